import { createHmac, generateKeyPairSync } from 'node:crypto';
import { PassThrough } from 'node:stream';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { createLogger } from '../../src/logger';
import { PATH_LIKE_USER_IDS } from '../helpers/hostile-inputs';
import { TEST_SECRET, bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const sign = (payload: object, secret = TEST_SECRET) => jwt.sign(payload, secret, { algorithm: 'HS256' });
/** Signs any payload, including ones jsonwebtoken's own sign() refuses to produce. */
const signRaw = (payload: object) => {
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${unsigned}.${createHmac('sha256', TEST_SECRET).update(unsigned).digest('base64url')}`;
};

async function expectRejected(app: TestApp['app'], token: string | undefined, header?: string) {
  const req = request(app).get('/api/v1/me');
  if (header !== undefined) req.set('Authorization', header);
  else if (token !== undefined) req.set('Authorization', `Bearer ${token}`);
  const res = await req;
  expect(res.status).toBe(401);
  expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status: 401, title: 'Unauthorized', requestId: res.headers['x-request-id'] });
  expect(res.headers['cache-control']).toBe('no-store');
}

forEachBackend((backend) => {
  describe('with a shared secret (HS256)', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({}, { backend });
    });
    afterAll(async () => {
      // No refused token stored anything for the users the tokens name (nor did alice's reads).
      for (const user of ['alice', 'bob']) {
        const me = await request(t.app).get('/api/v1/me').set(bearer(t.token(user))).expect(200);
        expect({ user, usage: me.body.usage }).toEqual({ user, usage: { sessions: 0, files: 0, bytes: 0 } });
      }
      await t.close();
    });

    it('accepts a well-formed token (the control case)', async () => {
      const res = await request(t.app).get('/api/v1/me').set('Authorization', `Bearer ${sign({ sub: 'alice', exp: now() + 60 })}`);
      expect(res.status).toBe(200);
      expect(res.body.userId).toBe('alice');
    });

    it('refuses a request without a token, another scheme, or a token in the query string', async () => {
      await expectRejected(t.app, undefined);
      await expectRejected(t.app, undefined, `Basic ${Buffer.from('alice:pw').toString('base64')}`);
      await expectRejected(t.app, undefined, 'Bearer');
      await expectRejected(t.app, undefined, 'Bearer not.a-token');
      const res = await request(t.app).get(`/api/v1/me?access_token=${sign({ sub: 'alice', exp: now() + 60 })}`);
      expect(res.status).toBe(401);
    });

    it('serves no spelling of an API path without a token (case, trailing slash, doubled slash, dot segments)', async () => {
      const token = `Bearer ${sign({ sub: 'alice', exp: now() + 60 })}`;
      const answered: string[] = [];
      for (const path of ['/api/v1/me', '/API/V1/me', '/Api/v1/ME', '/api/v1/me/', '/api/v1//me', '/api/x/../v1/me', '/api/v1/sessions']) {
        const served = await request(t.app).get(path).set('Authorization', token);
        const refused = await request(t.app).get(path);
        // What a route answers with a token is refused without one; anything else is refused or not found.
        if (served.status === 200) expect({ path, status: refused.status }).toEqual({ path, status: 401 });
        else expect({ path, refused: [401, 404].includes(refused.status) }).toEqual({ path, refused: true });
        if (served.status === 200) answered.push(path);
      }
      expect(answered).toEqual(['/api/v1/me', '/API/V1/me', '/Api/v1/ME', '/api/v1/me/', '/api/v1/sessions']);
    });

    it('refuses alg none', async () => {
      const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', exp: now() + 60 })}.`;
      await expectRejected(t.app, unsigned);
      const noneUpper = `${b64({ alg: 'NONE', typ: 'JWT' })}.${b64({ sub: 'alice', exp: now() + 60 })}.`;
      await expectRejected(t.app, noneUpper);
    });

    it('refuses a token signed with another key', async () => {
      await expectRejected(t.app, sign({ sub: 'alice', exp: now() + 60 }, 'another-secret-another-secret-another!'));
    });

    it('refuses an algorithm outside the allowlist even with the right secret', async () => {
      await expectRejected(t.app, jwt.sign({ sub: 'alice', exp: now() + 60 }, TEST_SECRET, { algorithm: 'HS512' }));
    });

    it('refuses an expired token and one without exp', async () => {
      await expectRejected(t.app, sign({ sub: 'alice', exp: now() - 60 }));
      await expectRejected(t.app, sign({ sub: 'alice' }));
      await expectRejected(t.app, signRaw({ sub: 'alice', exp: 'tomorrow' }));
      // The raw signer itself is sound: the same token with a numeric exp passes.
      expect((await request(t.app).get('/api/v1/me').set('Authorization', `Bearer ${signRaw({ sub: 'alice', exp: now() + 60 })}`)).status).toBe(200);
    });

    it('refuses a token it accepted before once that token expires', async () => {
      const strict = await startTestApp({ JWT_CLOCK_TOLERANCE_S: '0' }, { backend });
      const exp = now() + 1;
      const token = sign({ sub: 'alice', exp });
      expect((await request(strict.app).get('/api/v1/me').set('Authorization', `Bearer ${token}`)).status).toBe(200);
      expect((await request(strict.app).get('/api/v1/me').set('Authorization', `Bearer ${token}`)).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50));
      await expectRejected(strict.app, token);
      await strict.close();
    });

    it('refuses nbf in the future beyond the clock tolerance, accepts it within', async () => {
      await expectRejected(t.app, sign({ sub: 'alice', exp: now() + 600, nbf: now() + 120 }));
      const res = await request(t.app).get('/api/v1/me').set('Authorization', `Bearer ${sign({ sub: 'alice', exp: now() + 600, nbf: now() + 2 })}`);
      expect(res.status).toBe(200);
    });

    it('refuses iat in the future beyond the clock tolerance, accepts it within (and iat in the past)', async () => {
      await expectRejected(t.app, signRaw({ sub: 'alice', exp: now() + 600, iat: now() + 120 }));
      await expectRejected(t.app, signRaw({ sub: 'alice', exp: now() + 600, iat: 'yesterday' }));
      for (const iat of [now() + 2, now() - 3600]) {
        const res = await request(t.app).get('/api/v1/me').set('Authorization', `Bearer ${signRaw({ sub: 'alice', exp: now() + 600, iat })}`);
        expect(res.status).toBe(200);
      }
    });

    it('refuses a token whose protected header has crit (RFC 7515 4.1.11), however often it is sent', async () => {
      const withHeader = (header: object) => {
        const unsigned = `${b64({ alg: 'HS256', typ: 'JWT', ...header })}.${b64({ sub: 'alice', exp: now() + 600 })}`;
        return `${unsigned}.${createHmac('sha256', TEST_SECRET).update(unsigned).digest('base64url')}`;
      };
      // The same signer without crit is accepted: only the header makes the difference.
      expect((await request(t.app).get('/api/v1/me').set('Authorization', `Bearer ${withHeader({})}`)).status).toBe(200);
      const critical = withHeader({ crit: ['exp'] });
      await expectRejected(t.app, critical);
      await expectRejected(t.app, critical);
      await expectRejected(t.app, withHeader({ crit: ['b64'], b64: false }));
      await expectRejected(t.app, withHeader({ crit: [] }));
    });

    it.each([
      ['missing', {}],
      ['empty', { sub: '' }],
      ['a number', { sub: 42 }],
      ['an array', { sub: ['alice'] }],
      ['an object', { sub: { id: 'alice' } }],
      ['null', { sub: null }],
    ])('refuses a user claim that is %s', async (_name, claims) => {
      await expectRejected(t.app, sign({ ...claims, exp: now() + 60 }));
    });

    it.each(PATH_LIKE_USER_IDS)('refuses a user id with %s', async (_name, sub) => {
      await expectRejected(t.app, sign({ sub, exp: now() + 60 }));
    });

    it('refuses a tampered payload (signature of another payload)', async () => {
      const [header, , signature] = sign({ sub: 'alice', exp: now() + 60 }).split('.');
      await expectRejected(t.app, `${header}.${b64({ sub: 'bob', exp: now() + 60 })}.${signature}`);
    });

    it('refuses a token longer than any IdP issues', async () => {
      await expectRejected(t.app, sign({ sub: 'alice', exp: now() + 60, pad: 'x'.repeat(10_000) }));
    });
  });

  describe('with an RSA public key (RS256)', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ JWT_SECRET: '', JWT_PUBLIC_KEY: publicPem }, { backend });
    });
    afterAll(() => t.close());

    it('accepts RS256 tokens from the private key', async () => {
      const token = jwt.sign({ sub: 'alice' }, privateKey, { algorithm: 'RS256', expiresIn: 60 });
      expect((await request(t.app).get('/api/v1/me').set('Authorization', `Bearer ${token}`)).status).toBe(200);
    });

    it('refuses HS256 signed with the public key as the secret (key confusion)', async () => {
      const header = b64({ alg: 'HS256', typ: 'JWT' });
      const payload = b64({ sub: 'alice', exp: now() + 60 });
      const signature = createHmac('sha256', publicPem).update(`${header}.${payload}`).digest('base64url');
      await expectRejected(t.app, `${header}.${payload}.${signature}`);
    });

    it('refuses a token from another RSA key', async () => {
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      await expectRejected(t.app, jwt.sign({ sub: 'alice' }, other, { algorithm: 'RS256', expiresIn: 60 }));
    });
  });

  describe('with issuer, audience and a custom user claim', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'session-vault', JWT_USER_CLAIM: 'uid' }, { backend });
    });
    afterAll(() => t.close());

    const token = (claims: object) => sign({ exp: now() + 60, iss: 'https://idp.example', aud: 'session-vault', uid: 'alice', ...claims });

    it('accepts the right issuer and audience and reads the configured claim', async () => {
      const res = await request(t.app).get('/api/v1/me').set('Authorization', `Bearer ${token({ sub: 'bob' })}`);
      expect(res.status).toBe(200);
      expect(res.body.userId).toBe('alice');
    });

    it('refuses a wrong issuer, a wrong audience, or a token carrying only sub', async () => {
      await expectRejected(t.app, token({ iss: 'https://evil.example' }));
      await expectRejected(t.app, token({ aud: 'another-service' }));
      await expectRejected(t.app, sign({ exp: now() + 60, iss: 'https://idp.example', aud: 'session-vault', sub: 'alice' }));
    });
  });

  describe('the security log', () => {
    it('names why a future iat or a crit header was refused', async () => {
      const stream = new PassThrough();
      let logText = '';
      stream.setEncoding('utf8').on('data', (chunk: string) => (logText += chunk));
      const logged = await startTestApp({}, { backend, logger: createLogger({ level: 'warn', format: 'json' }, stream) });
      try {
        await expectRejected(logged.app, signRaw({ sub: 'alice', exp: now() + 600, iat: now() + 3600 }));
        const unsigned = `${b64({ alg: 'HS256', typ: 'JWT', crit: ['exp'] })}.${b64({ sub: 'alice', exp: now() + 600 })}`;
        await expectRejected(logged.app, `${unsigned}.${createHmac('sha256', TEST_SECRET).update(unsigned).digest('base64url')}`);
        const reasons = logText
          .split('\n')
          .filter((l) => l.length > 0)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((l) => l.event === 'token rejected')
          .map((l) => l.reason);
        expect(reasons).toEqual(['token issued in the future', 'token header has crit (no extension is understood)']);
      } finally {
        await logged.close();
      }
    });
  });
});
