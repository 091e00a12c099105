/**
 * RATE_LIMIT_STORE=redis in the real process: two replicas on the machine's Redis share one
 * budget; a replica whose Redis cannot be reached still starts (and says so), stays ready,
 * and closes the Redis client after the drain on SIGTERM. A bad REDIS_URL stops it at once.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { rm } from 'node:fs/promises';
import jwt from 'jsonwebtoken';
import { freePort } from '../helpers/free-port';
import { logLines, runToExit, startServer, type ServerProcess } from '../helpers/server-process';
import { TEST_SECRET, makeTempDir } from '../helpers/test-app';

jest.setTimeout(90_000);

const servers: ServerProcess[] = [];
const dirs: string[] = [];

async function replica(env: Record<string, string>): Promise<ServerProcess> {
  const dataDir = await makeTempDir();
  dirs.push(dataDir);
  const server = await startServer({ DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET, ...env });
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const authFor = (user: string) => ({ Authorization: `Bearer ${jwt.sign({ sub: user }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 })}` });

it('two replicas on one Redis share each user\'s budget: the 31st request is a 429 whichever answers', async () => {
  const env = { RATE_LIMIT_STORE: 'redis', REDIS_URL: 'redis://127.0.0.1:6379', RATE_LIMIT_MAX: '30', RATE_LIMIT_IP_MAX: '10000000', TRUST_PROXY: '1' };
  const replicas = [await replica(env), await replica(env)];
  // A user and an address of this test alone: independent of other tests and of leftovers.
  const headers = { ...authFor(`rl-${randomBytes(8).toString('hex')}`), 'X-Forwarded-For': `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}` };
  const statuses = [];
  for (let i = 0; i < 32; i++) statuses.push((await fetch(`${replicas[i % 2]!.url}/api/v1/me`, { headers })).status);
  expect(statuses).toEqual([...Array(30).fill(200), 429, 429]);
});

it('starts without Redis (logged once, ready, requests pass), and closes its client after the drain', async () => {
  const server = await replica({ RATE_LIMIT_STORE: 'redis', REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  expect((await fetch(`${server.url}/api/v1/me`, { headers: authFor('alice') })).status).toBe(200);

  server.proc.kill('SIGTERM');
  expect(await server.exited).toEqual({ code: 0, signal: null });
  const lines = logLines(server.stdout());
  expect(lines.filter((l) => l.event === 'rate limit store unavailable')).toEqual([
    expect.objectContaining({ level: 'warn', category: 'security', onStoreError: 'allow' }),
  ]);
  expect(lines.find((l) => l.message === 'rate limit store')).toMatchObject({ connected: false });
  const messages = lines.map((l) => l.message);
  expect(messages.indexOf('rate limit store closed')).toBeGreaterThan(messages.indexOf('stopped'));
  expect(messages.indexOf('storage closed')).toBeGreaterThan(messages.indexOf('stopped'));
  expect(server.stderr()).toBe('');
});

it('exits 1 on a bad REDIS_URL, naming the variable and not the password', async () => {
  const dataDir = await makeTempDir();
  dirs.push(dataDir);
  const finished = await runToExit({ DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET, RATE_LIMIT_STORE: 'redis', REDIS_URL: 'http://app:Pa55-in-url@cache.internal:6379' });
  expect(finished.code).toBe(1);
  expect(finished.stderr).toMatch(/REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/);
  expect(finished.stderr + finished.stdout).not.toContain('Pa55');
});
