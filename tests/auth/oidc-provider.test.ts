/**
 * JWT_OIDC_ISSUER against a real OpenID provider (oidc-provider in a child process, see
 * tests/helpers/oidc-provider.ts): discovery, real access tokens from the client credentials
 * grant used on the API, another issuer's token and another audience's refused, and a key
 * rotation at the provider followed without a restart, to the point where tokens under the
 * removed key fail.
 */
import request from 'supertest';
import { captureLog, type LogCapture } from '../helpers/log-capture';
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/oidc-provider';
import { bearer, startTestApp, type TestApp } from '../helpers/test-app';

jest.setTimeout(90_000);

const AUDIENCE = 'https://api.session-vault.test';
const OTHER_AUDIENCE = 'https://other-api.session-vault.test';
const CLIENT = 'svc-client-a';

let idp: TestIdentityProvider;
let elsewhere: TestIdentityProvider;
let t: TestApp | undefined;
let log: LogCapture;

beforeAll(async () => {
  [idp, elsewhere] = await Promise.all([
    startIdentityProvider({ audiences: [AUDIENCE, OTHER_AUDIENCE], clients: [CLIENT] }),
    startIdentityProvider({ audiences: [AUDIENCE], clients: [CLIENT] }),
  ]);
});

afterAll(async () => {
  await Promise.all([idp?.stop(), elsewhere?.stop()]);
});

beforeEach(() => {
  log = captureLog('info');
});

afterEach(async () => {
  await t?.close();
  t = undefined;
});

function start(env: Record<string, string> = {}): Promise<TestApp> {
  return startTestApp(
    { JWT_SECRET: '', JWT_OIDC_ISSUER: idp.issuer, JWT_AUDIENCE: AUDIENCE, JWT_JWKS_REFETCH_MIN_S: '1', ...env },
    { logger: log.logger },
  );
}

const me = (token: string) => request(t!.app).get('/api/v1/me').set(bearer(token));
const lastReason = () => log.lines().filter((l) => l.event === 'token rejected').at(-1)?.reason;
const keysLoaded = (kids: string[]) => (l: Record<string, unknown>) =>
  l.message === 'identity provider keys loaded' && JSON.stringify(l.kids) === JSON.stringify(kids);

it("accepts the provider's access tokens: the user is the token's sub, and the API works for it", async () => {
  t = await start();
  const token = await idp.token();
  expect((await me(token).expect(200)).body.userId).toBe(CLIENT);
  const created = await request(t.app).post('/api/v1/sessions').set(bearer(token)).send({ title: 'from the IdP' }).expect(201);
  const read = await request(t.app).get(`/api/v1/sessions/${created.body.id}`).set(bearer(token)).expect(200);
  expect(read.body.title).toBe('from the IdP');
  expect(log.lines().find((l) => l.message === 'jwt verification')).toMatchObject({ source: 'JWT_OIDC_ISSUER', algorithms: ['RS256', 'ES256'] });
});

it("refuses another issuer's token and a token for another audience", async () => {
  t = await start();
  await me(await elsewhere.token()).expect(401);
  await me(await idp.token({ audience: OTHER_AUDIENCE })).expect(401);
  expect(lastReason()).toMatch(/audience invalid/);
  await me(await idp.token()).expect(200);
});

it('follows a key rotation without a restart, and refuses tokens under the removed key after the cache lifetime', async () => {
  t = await start({ JWT_JWKS_CACHE_S: '2' });
  const before = await idp.token();
  await me(before).expect(200);
  const [oldKid] = idp.kids();

  const newKid = await idp.rotate();
  const after = await idp.token();
  // The new key is published beside the old one: the next fetch (a token naming it, or the cache lifetime) loads both.
  await log.waitForLine(keysLoaded([newKid, oldKid!]), 'the rotated key set');
  await me(after).expect(200);
  await me(before).expect(200);

  await idp.dropOldKeys();
  await log.waitForLine(keysLoaded([newKid]), 'the key set without the old key');
  // Remembered as verified a moment ago, the old token is verified again now its key is gone.
  await me(before).expect(401);
  expect(lastReason()).toBe('unknown kid');
  await me(after).expect(200);
});

it('refuses a discovery document that names another issuer, and starts all the same', async () => {
  t = await start({ JWT_OIDC_ISSUER: `${idp.issuer}/` });
  expect(log.lines().find((l) => l.message === 'identity provider keys unavailable')).toMatchObject({
    reason: 'discovery document names another issuer',
  });
  await me(await idp.token()).expect(401);
  await request(t.app).get('/readyz').expect(200);
});
