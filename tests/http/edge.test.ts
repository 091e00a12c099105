import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';
import request from 'supertest';
import { createApp } from '../../src/app';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

/** What a shared store (Redis and the like) gives: one count for every replica. */
class SharedCounts implements Store {
  private windowMs = 60_000;
  constructor(private readonly counts: Map<string, number>) {}
  init(options: Options): void {
    this.windowMs = options.windowMs;
  }
  async get(key: string): Promise<ClientRateLimitInfo> {
    return { totalHits: this.counts.get(key) ?? 0, resetTime: new Date(Date.now() + this.windowMs) };
  }
  async increment(key: string): Promise<ClientRateLimitInfo> {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    return this.get(key);
  }
  async decrement(key: string): Promise<void> {
    this.counts.set(key, (this.counts.get(key) ?? 1) - 1);
  }
  async resetKey(key: string): Promise<void> {
    this.counts.delete(key);
  }
}

forEachBackend((backend) => {
  describe('request ids', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({}, { backend });
    });
    afterAll(() => t.close());

    it('keeps a well-formed incoming X-Request-Id and replaces a malformed one', async () => {
      const kept = await request(t.app).get('/healthz').set('X-Request-Id', 'proxy-id-12345');
      expect(kept.headers['x-request-id']).toBe('proxy-id-12345');
      const replaced = await request(t.app).get('/api/v1/me').set('X-Request-Id', 'bad id\twith "quotes"');
      expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(replaced.body.requestId).toBe(replaced.headers['x-request-id']);
    });

    it('answers health and readiness without a token', async () => {
      expect((await request(t.app).get('/healthz')).body).toEqual({ status: 'ok' });
      expect((await request(t.app).get('/readyz')).status).toBe(200);
      t.service.setStarted(false);
      expect((await request(t.app).get('/readyz')).status).toBe(503);
      t.service.setStarted(true);
    });
  });

  describe('rate limits', () => {
    let t: TestApp;
    beforeEach(async () => {
      t = await startTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_IP_MAX: '8' }, { backend });
    });
    afterEach(() => t.close());

    it('limits each user separately and answers 429 as a problem with Retry-After', async () => {
      const alice = bearer(t.token('alice'));
      for (let i = 0; i < 3; i++) expect((await request(t.app).get('/api/v1/me').set(alice)).status).toBe(200);
      const limited = await request(t.app).get('/api/v1/me').set(alice);
      expect(limited.status).toBe(429);
      expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(limited.headers.ratelimit).toMatch(/"user"; r=0/);
      // Another user behind the same address still has a budget.
      expect((await request(t.app).get('/api/v1/me').set(bearer(t.token('bob')))).status).toBe(200);
    });

    it('counts requests per address before authentication, bad tokens included', async () => {
      for (let i = 0; i < 8; i++) expect((await request(t.app).get('/api/v1/me').set('Authorization', 'Bearer x.y.z')).status).toBe(401);
      const limited = await request(t.app).get('/api/v1/me').set(bearer(t.token('carol')));
      expect(limited.status).toBe(429);
    });
  });

  describe('rate-limit store', () => {
    it('is pluggable: two replicas sharing one store share each user\'s budget', async () => {
      const t = await startTestApp({ RATE_LIMIT_MAX: '4' }, { backend });
      const counts = { ip: new Map<string, number>(), user: new Map<string, number>() };
      const replica = () =>
        createApp(t.config, { ...t.service.deps, rateLimitStores: { ip: new SharedCounts(counts.ip), user: new SharedCounts(counts.user) } });
      const [one, two] = [replica(), replica()];
      const alice = bearer(t.token('alice'));
      const statuses = [];
      for (const app of [one, two, one, two, one]) statuses.push((await request(app).get('/api/v1/me').set(alice)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 429]);
      expect([...counts.user.keys()]).toEqual(['user:alice']);
      await t.close();
    });
  });
});
