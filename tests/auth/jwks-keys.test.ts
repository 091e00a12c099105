/**
 * JWT_JWKS_URL against a hand-built JWKS server: which key verifies a token (kid, algorithm
 * from the allowlist and the key type, never from the token alone), how often an unknown kid
 * may make the service fetch, and what a token gets while the provider hangs, fails or sends
 * something that is not a JWKS. Every request goes through the real app.
 */
import { createHmac } from 'node:crypto';
import request from 'supertest';
import { captureLog, type LogCapture } from '../helpers/log-capture';
import { startJwksServer, type JwksServer } from '../helpers/jwks-server';
import { bearer, startTestApp, type TestApp } from '../helpers/test-app';

jest.setTimeout(60_000);

const AUDIENCE = 'https://api.session-vault.test';
const ISSUER = 'https://idp.session-vault.test/';
const claims = (sub: string) => ({ sub, aud: AUDIENCE, iss: ISSUER });

let idp: JwksServer;
let t: TestApp | undefined;
let log: LogCapture;

beforeEach(async () => {
  idp = await startJwksServer();
  log = captureLog('info');
});

afterEach(async () => {
  await t?.close();
  t = undefined;
  await idp.close();
});

function start(env: Record<string, string> = {}): Promise<TestApp> {
  return startTestApp(
    { JWT_SECRET: '', JWT_JWKS_URL: idp.jwksUrl, JWT_AUDIENCE: AUDIENCE, JWT_ISSUER: ISSUER, JWT_JWKS_REFETCH_MIN_S: '1', ...env },
    { logger: log.logger },
  );
}

const me = (token: string) => request(t!.app).get('/api/v1/me').set(bearer(token));
const rejections = () => log.lines().filter((l) => l.event === 'token rejected');
const lastReason = () => rejections().at(-1)?.reason;

describe('which key verifies a token', () => {
  it('accepts a token under a published RSA or EC key, and refuses one under a key it never published', async () => {
    const rsa = idp.addKey();
    const ec = idp.addKey({ type: 'ec' });
    t = await start();
    expect((await me(idp.sign(claims('alice'), rsa)).expect(200)).body.userId).toBe('alice');
    expect((await me(idp.sign(claims('bob'), ec)).expect(200)).body.userId).toBe('bob');

    const stranger = await startJwksServer();
    try {
      const forged = stranger.addKey({ kid: rsa.kid! });
      await me(stranger.sign(claims('alice'), forged)).expect(401);
      expect(lastReason()).toMatch(/invalid signature/);
    } finally {
      await stranger.close();
    }
  });

  it('requires a kid when the JWKS holds more than one key, and not when it holds one', async () => {
    const only = idp.addKey({ kid: null });
    t = await start();
    await me(idp.sign(claims('alice'), only)).expect(200);
    await t.close();

    idp.addKey();
    t = await start();
    const kidless = idp.sign(claims('alice'), only);
    await me(kidless).expect(401);
    expect(lastReason()).toBe('token has no kid and the JWKS holds several keys');
  });

  it('takes the algorithm from the allowlist and the key type: an HS256 token made with the RSA public key is refused', async () => {
    const rsa = idp.addKey();
    t = await start();
    // The classic confusion: the public key's PEM used as an HMAC secret.
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${b64({ alg: 'HS256', typ: 'JWT', kid: rsa.kid })}.${b64({ ...claims('alice'), exp: Math.floor(Date.now() / 1000) + 600 })}`;
    const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' });
    const confused = `${unsigned}.${createHmac('sha256', pem).update(unsigned).digest('base64url')}`;
    await me(confused).expect(401);
    expect(lastReason()).toMatch(/invalid algorithm/);

    // RS512 is what the key could sign with, but the allowlist (default RS256, ES256) does not name it.
    await me(idp.sign(claims('alice'), rsa, { algorithm: 'RS512' })).expect(401);
    expect(lastReason()).toMatch(/invalid algorithm/);
  });

  it("holds a token to its JWK's own alg, and drops keys the allowlist cannot use", async () => {
    const pinned = idp.addKey({ jwkAlg: 'RS384' });
    const ec = idp.addKey({ type: 'ec' });
    t = await start({ JWT_ALGORITHMS: 'RS256,RS384' });
    await me(idp.sign(claims('alice'), pinned)).expect(401);
    expect(lastReason()).toMatch(/invalid algorithm/);
    await me(idp.sign(claims('alice'), pinned, { algorithm: 'RS384' })).expect(200);
    // The EC key is unusable with RS256,RS384, so it is not held: its kid is unknown.
    await me(idp.sign(claims('alice'), ec)).expect(401);
    expect(lastReason()).toBe('unknown kid');
  });

  it('enforces the issuer and the audience', async () => {
    idp.addKey();
    t = await start();
    await me(idp.sign({ ...claims('alice'), aud: 'https://another-api.test' })).expect(401);
    expect(lastReason()).toMatch(/audience invalid/);
    await me(idp.sign({ ...claims('alice'), iss: 'https://evil.test/' })).expect(401);
    expect(lastReason()).toMatch(/issuer invalid/);
  });
});

describe('fetching keys', () => {
  it('accepts a key published after startup without a restart', async () => {
    idp.addKey();
    t = await start();
    const fresh = idp.addKey();
    // Past JWT_JWKS_REFETCH_MIN_S (1 s) since the startup fetch, an unknown kid may fetch again.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await me(idp.sign(claims('alice'), fresh)).expect(200)).body.userId).toBe('alice');
    expect(idp.jwksRequests).toBe(2);
    expect(log.lines().some((l) => l.message === 'identity provider keys loaded' && (l.kids as string[]).includes(fresh.kid!))).toBe(true);
  });

  it('fetches at most once per JWT_JWKS_REFETCH_MIN_S however many unknown kids arrive', async () => {
    idp.addKey();
    t = await start({ JWT_JWKS_REFETCH_MIN_S: '2' });
    expect(idp.jwksRequests).toBe(1);
    const flood = (n: number) =>
      Promise.all(Array.from({ length: n }, () => me(idp.sign(claims('mallory'), idp.keys[0], { keyid: `invented-${Math.random()}` }))));

    // Right after startup, inside the interval: refused with no fetch at all.
    const first = await flood(50);
    expect(first.every((r) => r.status === 401)).toBe(true);
    expect(idp.jwksRequests).toBe(1);

    // Once the interval has passed, a flood costs the provider one fetch (shared by every request waiting on it).
    await new Promise((r) => setTimeout(r, 2100));
    const started = Date.now();
    const second = await flood(100);
    const intervals = Math.floor((Date.now() - started) / 2000) + 1;
    expect(second.every((r) => r.status === 401)).toBe(true);
    expect(idp.jwksRequests - 1).toBeGreaterThanOrEqual(1);
    expect(idp.jwksRequests - 1).toBeLessThanOrEqual(intervals);
    expect(lastReason()).toBe('unknown kid');
  });

  it('keeps the keys it holds while the provider hangs, and answers a token needing a new key within the timeout', async () => {
    const known = idp.addKey();
    t = await start({ JWT_JWKS_TIMEOUT_MS: '500' });
    await me(idp.sign(claims('alice'), known)).expect(200);
    idp.mode = 'hang';
    const fresh = idp.addKey();
    await new Promise((r) => setTimeout(r, 1100));

    const started = Date.now();
    const refused = await me(idp.sign(claims('alice'), fresh));
    expect(refused.status).toBe(401);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    // The fetch is cut at 500 ms; the rest is room for a busy machine, far below a hang.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(lastReason()).toBe('signing keys unavailable (JWKS no answer in time)');

    await me(idp.sign(claims('alice'), known)).expect(200);
    await request(t.app).get('/readyz').expect(200);
  });

  it('answers 503 with Retry-After when the operator chose JWT_JWKS_UNAVAILABLE=503', async () => {
    const key = idp.addKey();
    idp.mode = 'error';
    t = await start({ JWT_JWKS_UNAVAILABLE: '503', JWT_JWKS_REFETCH_MIN_S: '5' });
    const unavailable = await me(idp.sign(claims('alice'), key));
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(Number(unavailable.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(unavailable.headers['retry-after'])).toBeLessThanOrEqual(5);
    expect(unavailable.body).toMatchObject({ status: 503 });
    expect(JSON.stringify(unavailable.body)).not.toContain(idp.origin);
  });

  it.each([
    ['error', 'JWKS answered 500'],
    ['garbage', 'JWKS is not JSON'],
    ['no-keys', 'JWKS holds no signing key'],
    ['huge', 'JWKS is larger than 262144 bytes'],
  ] as const)('treats a provider that answers %s as unavailable: one warning per outage, one line when it is back', async (mode, reason) => {
    const known = idp.addKey();
    t = await start();
    idp.mode = mode;
    const fresh = idp.addKey();
    // The held keys are fresh for JWT_JWKS_CACHE_S: only a token needing a new key fetches now.
    await new Promise((r) => setTimeout(r, 1100));
    await me(idp.sign(claims('alice'), fresh)).expect(401);
    expect(lastReason()).toBe(`signing keys unavailable (${reason})`);
    const warning = await log.waitForLine((l) => l.message === 'identity provider keys unavailable', 'the outage warning');
    expect(warning).toMatchObject({ level: 'warn', reason, keysHeld: 1 });
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1100));
      await me(idp.sign(claims('alice'), fresh)).expect(401);
      await me(idp.sign(claims('alice'), known)).expect(200);
    }
    expect(log.lines().filter((l) => l.message === 'identity provider keys unavailable')).toHaveLength(1);
    await request(t.app).get('/readyz').expect(200);

    idp.mode = 'serve';
    await log.waitForLine((l) => l.message === 'identity provider keys available again', 'the recovery line');
    await me(idp.sign(claims('alice'), fresh)).expect(200);
  });
});

describe('at startup', () => {
  it('starts without the keys when the provider is down, and verifies once it is back', async () => {
    idp.mode = 'hang';
    const key = idp.addKey();
    const started = Date.now();
    t = await start({ JWT_JWKS_TIMEOUT_MS: '500' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(log.lines().find((l) => l.message === 'identity provider keys unavailable')).toMatchObject({ reason: 'JWKS no answer in time', keysHeld: 0 });
    await me(idp.sign(claims('alice'), key)).expect(401);

    idp.mode = 'serve';
    await log.waitForLine((l) => l.message === 'identity provider keys available again', 'the retry after startup');
    await me(idp.sign(claims('alice'), key)).expect(200);
  });

  it("in production, refuses a discovery document whose jwks_uri is http:// off loopback, and fetches nothing from it", async () => {
    idp.addKey();
    const issuer = `${idp.origin}/realm`;
    idp.serveDiscovery('/realm', { issuer, jwks_uri: 'http://idp.session-vault.test/jwks.json' });
    t = await startTestApp(
      { NODE_ENV: 'production', JWT_SECRET: '', JWT_OIDC_ISSUER: issuer, JWT_AUDIENCE: AUDIENCE },
      { logger: log.logger },
    );
    expect(log.lines().find((l) => l.message === 'identity provider keys unavailable')).toMatchObject({
      reason: "discovery document's jwks_uri must be https:// in production (http:// only on loopback)",
    });
    expect(idp.jwksRequests).toBe(0);
  });

  it('refuses to start with JWT_JWKS_REQUIRED_AT_START=true when the first fetch fails, naming the variable', async () => {
    idp.mode = 'error';
    idp.addKey();
    await expect(start({ JWT_JWKS_REQUIRED_AT_START: 'true' })).rejects.toThrow(
      'JWT_JWKS_URL: the signing keys could not be fetched at startup (JWKS answered 500) and JWT_JWKS_REQUIRED_AT_START is true',
    );
  });
});
