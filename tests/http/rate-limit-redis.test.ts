/**
 * RATE_LIMIT_STORE=redis: two app instances, each built as the entry point builds it (its own
 * Redis client and stores), on the machine's Redis, count the per-user and the per-IP limits
 * together, whichever instance answers; with the default memory store each counts alone.
 *
 * Each test counts under keys nobody else uses (a random user, a random client address
 * through TRUST_PROXY), so tests are independent of each other, of other runs and of leftovers.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createClient } from 'redis';
import request from 'supertest';
import { bearer, startTestApp, type TestApp } from '../helpers/test-app';

const REDIS_URL = 'redis://127.0.0.1:6379';

const randomUser = () => `rl-${randomBytes(8).toString('hex')}`;
const randomAddress = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

const redis = createClient({ url: REDIS_URL });
const apps: TestApp[] = [];

beforeAll(async () => {
  await redis.connect();
});
afterAll(async () => {
  redis.destroy();
});
afterEach(async () => {
  await Promise.all(apps.splice(0).map((t) => t.close()));
});

async function twoInstances(env: Record<string, string>): Promise<[TestApp, TestApp]> {
  const one = await startTestApp(env);
  apps.push(one);
  const two = await startTestApp(env);
  apps.push(two);
  return [one, two];
}

/** Sends `count` requests alternating between the instances, first `one`; their statuses. */
async function alternate(count: number, [one, two]: [TestApp, TestApp], send: (t: TestApp) => request.Test): Promise<Array<{ status: number; ratelimit: string | undefined }>> {
  const seen = [];
  for (let i = 0; i < count; i++) {
    const res = await send(i % 2 === 0 ? one : two);
    seen.push({ status: res.status, ratelimit: res.headers.ratelimit as string | undefined });
  }
  return seen;
}

const redisEnv = { RATE_LIMIT_STORE: 'redis', REDIS_URL, TRUST_PROXY: '1' };

describe('rate limits in Redis, shared by two instances', () => {
  it('counts each user once across both: the 31st request within the window is a 429 whichever instance answers', async () => {
    const instances = await twoInstances({ ...redisEnv, RATE_LIMIT_MAX: '30', RATE_LIMIT_IP_MAX: '10000000' });
    const user = randomUser();
    const address = randomAddress();
    const auth = bearer(instances[0].token(user));
    const seen = await alternate(32, instances, (t) => request(t.app).get('/api/v1/me').set(auth).set('X-Forwarded-For', address));

    expect(seen.slice(0, 30).map((r) => r.status)).toEqual(Array(30).fill(200));
    // The 31st goes to the first instance, the 32nd to the second: both refuse.
    expect(seen.slice(30).map((r) => r.status)).toEqual([429, 429]);
    expect(seen[30]!.ratelimit).toMatch(/"user"; r=0/);

    // One counter per limiter, each under its own prefix, expiring with the window.
    expect(await redis.get(`sv:rl:user:user:${user}`)).toBe('32');
    expect(await redis.get(`sv:rl:ip:${address}`)).toBe('32');
    const ttl = await redis.pTTL(`sv:rl:user:user:${user}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('counts each client address once across both, before authentication (TRUST_PROXY and X-Forwarded-For)', async () => {
    const instances = await twoInstances({ ...redisEnv, RATE_LIMIT_IP_MAX: '30' });
    const address = randomAddress();
    const seen = await alternate(32, instances, (t) =>
      request(t.app).get('/api/v1/me').set('Authorization', 'Bearer not.a.token').set('X-Forwarded-For', address),
    );
    expect(seen.slice(0, 30).map((r) => r.status)).toEqual(Array(30).fill(401));
    expect(seen.slice(30).map((r) => r.status)).toEqual([429, 429]);
    expect(seen[31]!.ratelimit).toMatch(/"ip"; r=0/);

    // Another address has its own budget, on either instance.
    for (const t of instances) {
      expect((await request(t.app).get('/api/v1/me').set('Authorization', 'Bearer not.a.token').set('X-Forwarded-For', randomAddress())).status).toBe(401);
    }
  });

  it('with the default memory store, each instance counts alone', async () => {
    const instances = await twoInstances({ RATE_LIMIT_MAX: '30', TRUST_PROXY: '1' });
    const auth = bearer(instances[0].token(randomUser()));
    const address = randomAddress();
    const seen = await alternate(61, instances, (t) => request(t.app).get('/api/v1/me').set(auth).set('X-Forwarded-For', address));
    // 30 each pass; the 61st is the first instance's 31st.
    expect(seen.slice(0, 60).map((r) => r.status)).toEqual(Array(60).fill(200));
    expect(seen[60]!.status).toBe(429);
  });
});
