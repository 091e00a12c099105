/**
 * The built service as a real process signing users in through a real OpenID provider
 * (oidc-provider, tests/helpers/oidc-provider.ts) in production mode: discovery over http on
 * loopback, the provider's access token accepted, and nothing printed to stderr (jwks-rsa's
 * ESM-only dependency loads through Node's require). Conflicting key sources stop it before
 * it listens, naming the variables.
 */
import { rm } from 'node:fs/promises';
import { startIdentityProvider, type TestIdentityProvider } from '../helpers/oidc-provider';
import { logLines, runToExit, startServer, type ServerProcess } from '../helpers/server-process';
import { makeTempDir } from '../helpers/test-app';

jest.setTimeout(60_000);

const AUDIENCE = 'https://api.session-vault.test';

let dataDir: string;
let idp: TestIdentityProvider | undefined;
let server: ServerProcess | undefined;

beforeEach(async () => {
  dataDir = await makeTempDir();
});

afterEach(async () => {
  await server?.stop();
  await idp?.stop();
  server = undefined;
  idp = undefined;
  await rm(dataDir, { recursive: true, force: true });
});

it("accepts the provider's token in production, with the keys fetched before it listens", async () => {
  idp = await startIdentityProvider({ audiences: [AUDIENCE], clients: ['svc-client-a'] });
  server = await startServer({
    NODE_ENV: 'production',
    DATA_DIR: dataDir,
    JWT_OIDC_ISSUER: idp.issuer,
    JWT_AUDIENCE: AUDIENCE,
    JWT_JWKS_REQUIRED_AT_START: 'true',
  });
  const lines = logLines(server.stdout());
  const loaded = lines.findIndex((l) => l.message === 'identity provider keys loaded');
  expect(loaded).toBeGreaterThanOrEqual(0);
  expect(loaded).toBeLessThan(lines.findIndex((l) => l.message === 'listening'));

  const res = await fetch(`${server.url}/api/v1/me`, { headers: { Authorization: `Bearer ${await idp.token()}` } });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { userId: string }).userId).toBe('svc-client-a');
  expect(server.stderr()).toBe('');
});

it('exits 1 before listening when two key sources are set, naming both', async () => {
  const result = await runToExit({
    NODE_ENV: 'production',
    DATA_DIR: dataDir,
    JWT_SECRET: 's'.repeat(40),
    JWT_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
  });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^session-vault: JWT_SECRET, JWT_JWKS_URL: set exactly one key source/m);
  expect(result.stderr).not.toContain('s'.repeat(40));
  expect(result.stdout).not.toMatch(/listening/);
});

it('exits 1 in production on an http:// JWKS URL off loopback', async () => {
  const result = await runToExit({ NODE_ENV: 'production', DATA_DIR: dataDir, JWT_JWKS_URL: 'http://idp.example.com/jwks.json' });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^session-vault: JWT_JWKS_URL: must be https:\/\/ in production \(http:\/\/ only on loopback\)$/m);
});
