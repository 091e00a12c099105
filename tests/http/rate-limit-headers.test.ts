/**
 * The service counts with express-rate-limit's stores but writes the draft-8 headers itself
 * (see src/http/rate-limit.ts). A client must not be able to tell: the headers equal, value for
 * value, what express-rate-limit's own middleware sends for the same keys and limits.
 */
import express from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import request from 'supertest';
import { bearer, startTestApp, type TestApp } from '../helpers/test-app';

const WINDOW_MS = 60_000;

/** express-rate-limit's own middleware, with the keys and limits the service uses. */
function libraryApp(ipLimit: number, userLimit: number, userId: string) {
  const app = express();
  const common = { windowMs: WINDOW_MS, standardHeaders: 'draft-8', legacyHeaders: false } as const;
  app.use(rateLimit({ ...common, limit: ipLimit, identifier: 'ip', keyGenerator: (req) => ipKeyGenerator(req.ip ?? 'unknown') }));
  app.use(rateLimit({ ...common, limit: userLimit, identifier: 'user', keyGenerator: () => `user:${userId}` }));
  app.get('/', (_req, res) => {
    res.end();
  });
  return app;
}

/** `t=` counts seconds to the window's end, which the two sides started a moment apart. */
function withoutResetTime(header: string | undefined): string | undefined {
  return header?.replace(/; t=\d+/g, '; t=_');
}

describe('rate-limit headers', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_IP_MAX: '5', RATE_LIMIT_WINDOW_MS: String(WINDOW_MS) });
  });
  afterAll(() => t.close());

  it('equal express-rate-limit draft-8 headers for the same keys, up to and past the limit', async () => {
    const library = libraryApp(5, 3, 'alice');
    const alice = bearer(t.token('alice'));
    for (let i = 0; i < 4; i++) {
      const ours = await request(t.app).get('/api/v1/me').set(alice);
      const theirs = await request(library).get('/');
      expect(ours.status).toBe(i < 3 ? 200 : 429);
      expect(ours.headers['ratelimit-policy']).toBe(theirs.headers['ratelimit-policy']);
      expect(withoutResetTime(ours.headers.ratelimit)).toBe(withoutResetTime(theirs.headers.ratelimit));
      for (const [, seconds] of ours.headers.ratelimit!.matchAll(/; t=(\d+)/g)) {
        expect(Number(seconds)).toBeGreaterThan(WINDOW_MS / 1000 - 5);
        expect(Number(seconds)).toBeLessThanOrEqual(WINDOW_MS / 1000);
      }
    }
  });
});
