/**
 * RATE_LIMIT_STORE=redis when Redis goes away: a private redis-server, killed (a crash),
 * paused (a Redis that hangs), or not there at startup. No request waits for it: with
 * RATE_LIMIT_ON_STORE_ERROR=allow requests pass, with deny they are a 503 problem with
 * Retry-After (never a 500); the outage is one security event, its end one line; /readyz
 * stays 200; and once redis-server runs again on the same port the limits apply again.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { createLogger } from '../../src/logger';
import { privateRedis, type PrivateRedis } from '../helpers/redis-server';
import { bearer, startTestApp, type TestApp } from '../helpers/test-app';

jest.setTimeout(90_000);

const LIMIT = 5;

let redis: PrivateRedis;
let t: TestApp | undefined;
let logText = '';

const logLines = () =>
  logText
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const unavailable = () => logLines().filter((l) => l.event === 'rate limit store unavailable');
const recovered = () => logLines().filter((l) => l.message === 'rate limit store recovered');

/** Waits until `check` holds; the log and the reconnection are events, never a fixed sleep. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${logText}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function start(onStoreError: 'allow' | 'deny'): Promise<TestApp> {
  const stream = new PassThrough();
  stream.setEncoding('utf8').on('data', (chunk: string) => (logText += chunk));
  t = await startTestApp(
    { RATE_LIMIT_STORE: 'redis', REDIS_URL: redis.url, RATE_LIMIT_MAX: String(LIMIT), RATE_LIMIT_ON_STORE_ERROR: onStoreError },
    { logger: createLogger({ level: 'info', format: 'json' }, stream) },
  );
  return t;
}

/** GET /api/v1/me as a user, with how long it took. */
async function me(app: TestApp, user: string) {
  const began = performance.now();
  const res = await request(app.app).get('/api/v1/me').set(bearer(app.token(user)));
  return { res, ms: performance.now() - began };
}

/** A fresh user's LIMIT requests pass and the next is a 429: the limit is counted in Redis. */
async function expectLimited(app: TestApp): Promise<void> {
  const user = `u-${randomBytes(6).toString('hex')}`;
  const statuses = [];
  for (let i = 0; i <= LIMIT; i++) statuses.push((await me(app, user)).res.status);
  expect(statuses).toEqual([...Array(LIMIT).fill(200), 429]);
}

beforeEach(async () => {
  logText = '';
  redis = await privateRedis();
});
afterEach(async () => {
  await t?.close();
  t = undefined;
  await redis.kill();
});

describe('RATE_LIMIT_ON_STORE_ERROR=allow', () => {
  it('lets requests pass while Redis is down, logs the outage once, and limits again once it is back', async () => {
    await redis.start();
    const app = await start('allow');
    await expectLimited(app);

    await redis.kill();
    for (let i = 0; i < 2 * LIMIT; i++) {
      const { res, ms } = await me(app, 'during-outage');
      expect(res.status).toBe(200);
      expect(ms).toBeLessThan(2000);
    }
    expect((await request(app.app).get('/readyz')).status).toBe(200);
    expect(unavailable()).toEqual([
      expect.objectContaining({ level: 'warn', category: 'security', onStoreError: 'allow', store: 'redis', error: expect.any(String) }),
    ]);

    await redis.start();
    await until(() => recovered().length === 1, 'the "rate limit store recovered" line');
    await expectLimited(app);
    expect(unavailable()).toHaveLength(1);
    expect(recovered()).toEqual([expect.objectContaining({ level: 'info', store: 'redis', downMs: expect.any(Number) })]);
  });

  it('starts while Redis is down (logged, /readyz 200), and counts once redis-server starts', async () => {
    const app = await start('allow');
    await until(() => logLines().some((l) => l.message === 'rate limit store') && unavailable().length > 0, 'the startup lines');
    expect(logLines().find((l) => l.message === 'rate limit store')).toMatchObject({ store: 'redis', connected: false, onStoreError: 'allow' });
    expect(unavailable()).toHaveLength(1);
    expect((await request(app.app).get('/readyz')).status).toBe(200);
    for (let i = 0; i <= LIMIT; i++) expect((await me(app, 'before-redis')).res.status).toBe(200);
    expect(unavailable()).toHaveLength(1);

    await redis.start();
    await until(() => recovered().length === 1, 'the "rate limit store recovered" line');
    await expectLimited(app);
  });
});

describe('RATE_LIMIT_ON_STORE_ERROR=deny', () => {
  it('answers 503 with Retry-After, quickly, while Redis is down, and limits again once it is back', async () => {
    await redis.start();
    const app = await start('deny');
    await expectLimited(app);

    await redis.kill();
    for (let i = 0; i < 2 * LIMIT; i++) {
      const { res, ms } = await me(app, 'during-outage');
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.body).toMatchObject({ type: '/problems/service-unavailable', status: 503, requestId: expect.any(String) });
      expect(ms).toBeLessThan(2000);
    }
    // Probes are not rate limited: one Redis outage does not take every replica out of the balancer.
    expect((await request(app.app).get('/readyz')).status).toBe(200);
    expect(unavailable()).toEqual([expect.objectContaining({ category: 'security', onStoreError: 'deny' })]);
    expect(logLines().filter((l) => l.message === 'unhandled error')).toEqual([]);

    await redis.start();
    await until(() => recovered().length === 1, 'the "rate limit store recovered" line');
    await expectLimited(app);
    expect(unavailable()).toHaveLength(1);
  });

  it('does not wait for a Redis that stopped answering: 503 within the command timeout, then limits again', async () => {
    await redis.start();
    const app = await start('deny');
    await expectLimited(app);

    redis.pause();
    for (let i = 0; i < 2 * LIMIT; i++) {
      const { res, ms } = await me(app, 'during-hang');
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(ms).toBeLessThan(2000);
    }
    expect(unavailable()).toEqual([expect.objectContaining({ onStoreError: 'deny', error: expect.stringMatching(/no answer within 500 ms/) })]);

    redis.resume();
    // Nothing reconnects (the connection stayed open): the next request that gets an answer ends the outage.
    await until(async () => (await me(app, `probe-${randomBytes(4).toString('hex')}`)).res.status === 200, 'a request to pass again');
    expect(recovered()).toHaveLength(1);
    await expectLimited(app);
    expect(unavailable()).toHaveLength(1);
  });
});
