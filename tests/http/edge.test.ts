import request from 'supertest';
import { bearer, startTestApp, type TestApp } from '../helpers/test-app';

describe('request ids', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
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
    t = await startTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_IP_MAX: '8' });
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
