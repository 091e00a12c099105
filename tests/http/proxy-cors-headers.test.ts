/**
 * What sits in front of the routes for a deployment behind a proxy and a browser on another
 * origin: TRUST_PROXY decides whether X-Forwarded-For means anything, CORS answers exact
 * origins only, and helmet's headers fit a JSON API.
 */
import { PassThrough } from 'node:stream';
import request from 'supertest';
import { createLogger } from '../../src/logger';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

function captureLog() {
  const stream = new PassThrough();
  let text = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const logger = createLogger({ level: 'info', format: 'json' }, stream);
  return {
    logger,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

forEachBackend((backend) => {
  describe('TRUST_PROXY', () => {
    const forwardedCalls = async (app: TestApp['app']) => {
      const statuses: number[] = [];
      for (const address of ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4']) {
        statuses.push((await request(app).get('/api/v1/me').set('X-Forwarded-For', address)).status);
      }
      return statuses;
    };

    it('off (the default): X-Forwarded-For changes neither the limiter key nor the logged address', async () => {
      const log = captureLog();
      t = await startTestApp({ RATE_LIMIT_IP_MAX: '3' }, { backend, logger: log.logger });
      expect(await forwardedCalls(t!.app)).toEqual([401, 401, 401, 429]);
      const ips = log.lines().filter((l) => l.category === 'request').map((l) => l.ip);
      expect(ips).toHaveLength(4);
      for (const ip of ips) expect(ip).toMatch(/127\.0\.0\.1$/);
    });

    it('set to one hop: each forwarded client has its own budget and is logged by its address', async () => {
      const log = captureLog();
      t = await startTestApp({ RATE_LIMIT_IP_MAX: '3', TRUST_PROXY: '1' }, { backend, logger: log.logger });
      expect(await forwardedCalls(t!.app)).toEqual([401, 401, 401, 401]);
      const ips = log.lines().filter((l) => l.category === 'request').map((l) => l.ip);
      expect(ips).toEqual(['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4']);
      // The same client is still limited, whatever the proxy's own address.
      for (let i = 0; i < 2; i++) await request(t.app).get('/api/v1/me').set('X-Forwarded-For', '203.0.113.1');
      expect((await request(t.app).get('/api/v1/me').set('X-Forwarded-For', '203.0.113.1')).status).toBe(429);
    });

    it('set to the proxy address: a spoofed left-most entry is not the client', async () => {
      const log = captureLog();
      t = await startTestApp({ TRUST_PROXY: 'loopback' }, { backend, logger: log.logger });
      await request(t.app).get('/healthz').set('X-Forwarded-For', '10.9.9.9, 198.51.100.7');
      const [line] = log.lines().filter((l) => l.category === 'request');
      // Only the loopback hop is trusted, so the client is the address it reported, not the spoof.
      expect(line!.ip).toBe('198.51.100.7');
    });

    it.each(['true', 'yes', '1.2.3', '10.0.0.0/33', '-1'])('refuses %j at startup', async (value) => {
      await expect(startTestApp({ TRUST_PROXY: value }, { backend })).rejects.toThrow(/TRUST_PROXY/);
    });
  });

  describe('CORS', () => {
    const SPA = 'https://app.example.com';

    it('answers a preflight from a listed origin, without credentials, before any token is needed', async () => {
      t = await startTestApp({ CORS_ORIGINS: `${SPA},http://localhost:5173`, RATE_LIMIT_IP_MAX: '1' }, { backend });
      const preflight = await request(t.app)
        .options('/api/v1/sessions/x')
        .set('Origin', SPA)
        .set('Access-Control-Request-Method', 'PATCH')
        .set('Access-Control-Request-Headers', 'authorization, content-type, if-match');
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(SPA);
      expect(preflight.headers['access-control-allow-methods']).toContain('PATCH');
      const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase().split(',');
      expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'if-match']));
      expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
      expect(preflight.headers['access-control-max-age']).toBe('600');
      expect(preflight.headers.vary).toMatch(/Origin/);
      // A second preflight is not rate limited either (RATE_LIMIT_IP_MAX is 1).
      const again = await request(t.app).options('/api/v1/me').set('Origin', SPA).set('Access-Control-Request-Method', 'GET');
      expect(again.status).toBe(204);
    });

    it('exposes the headers a client needs on real responses', async () => {
      t = await startTestApp({ CORS_ORIGINS: SPA }, { backend });
      const res = await request(t.app).post('/api/v1/sessions').set('Origin', SPA).set(bearer(t.token('alice'))).send({});
      expect(res.status).toBe(201);
      expect(res.headers['access-control-allow-origin']).toBe(SPA);
      const exposed = String(res.headers['access-control-expose-headers']).split(',');
      expect(exposed).toEqual(expect.arrayContaining(['ETag', 'Location', 'RateLimit', 'RateLimit-Policy', 'Retry-After', 'Content-Disposition']));
    });

    it('sends no CORS header to an origin that is not listed, or when none is', async () => {
      t = await startTestApp({ CORS_ORIGINS: SPA }, { backend });
      for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.com', 'null']) {
        const res = await request(t.app).options('/api/v1/me').set('Origin', origin).set('Access-Control-Request-Method', 'GET');
        expect(res.headers['access-control-allow-origin']).toBeUndefined();
      }
      await t.close();
      t = await startTestApp({}, { backend });
      const none = await request(t.app).get('/healthz').set('Origin', SPA);
      expect(none.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('refuses a malformed origin, and * in production, at startup', async () => {
      await expect(startTestApp({ CORS_ORIGINS: 'app.example.com' }, { backend })).rejects.toThrow(/CORS_ORIGINS/);
      await expect(startTestApp({ CORS_ORIGINS: 'https://app.example.com/' }, { backend })).rejects.toThrow(/CORS_ORIGINS/);
      await expect(startTestApp({ CORS_ORIGINS: '*', NODE_ENV: 'production' }, { backend })).rejects.toThrow(/CORS_ORIGINS/);
    });
  });

  describe('security headers', () => {
    it('fit a JSON API on every kind of response', async () => {
      t = await startTestApp({}, { backend });
      const alice = bearer(t.token('alice'));
      for (const res of [
        await request(t.app).get('/healthz'),
        await request(t.app).get('/api/v1/me').set(alice),
        await request(t.app).get('/api/v1/me'),
        await request(t.app).get('/nowhere'),
      ]) {
        expect(res.headers['x-powered-by']).toBeUndefined();
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['content-security-policy']).toMatch(/default-src 'none'/);
        expect(res.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
        expect(res.headers['x-frame-options']).toBe('DENY');
        expect(res.headers['referrer-policy']).toBe('no-referrer');
        expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
        // Headers for HTML documents only are left off a JSON API.
        for (const header of ['cross-origin-opener-policy', 'origin-agent-cluster', 'x-dns-prefetch-control', 'x-download-options', 'x-permitted-cross-domain-policies', 'x-xss-protection']) {
          expect(res.headers[header]).toBeUndefined();
        }
        // HSTS belongs to the TLS-terminating proxy.
        expect(res.headers['strict-transport-security']).toBeUndefined();
      }
    });
  });
});
