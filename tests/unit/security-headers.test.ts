/**
 * The security headers are helmet's, computed once: every response must carry exactly what
 * helmet itself would have set, for this API's options and for helmet's defaults.
 */
import express from 'express';
import helmet, { type HelmetOptions } from 'helmet';
import request from 'supertest';
import { API_SECURITY_HEADERS, securityHeaders } from '../../src/http/security-headers';

async function headersWith(middleware: express.RequestHandler) {
  const app = express();
  app.use((_req, res, next) => {
    // Set before the middleware, as Express does: helmet removes it.
    res.setHeader('X-Powered-By', 'Express');
    next();
  });
  app.use(middleware);
  app.get('/', (_req, res) => {
    res.json({ ok: true });
  });
  const { headers } = await request(app).get('/');
  const { date: _date, ...rest } = headers;
  return rest;
}

describe('security headers', () => {
  it.each<[string, HelmetOptions]>([
    ['this API', API_SECURITY_HEADERS],
    ["helmet's defaults", {}],
  ])('equal what helmet sets, with %s options', async (_name, options) => {
    const ours = await headersWith(securityHeaders(options));
    expect(ours).toEqual(await headersWith(helmet(options)));
    expect(ours['x-powered-by']).toBeUndefined();
    expect(ours['content-security-policy']).toBeDefined();
  });

  it('refuses options whose headers depend on the request', () => {
    const perRequest: HelmetOptions = {
      contentSecurityPolicy: { directives: { scriptSrc: [(_req, res) => `'nonce-${String((res as express.Response).locals.nonce)}'`] } },
    };
    expect(() => securityHeaders(perRequest)).toThrow(/depend on the request/);
    // One that reads deeper into the request, the same on two recordings, is refused as well.
    const fromHost: HelmetOptions = {
      contentSecurityPolicy: { directives: { connectSrc: [(req) => `https://${String((req as express.Request).headers?.host)}`] } },
    };
    expect(() => securityHeaders(fromHost)).toThrow(/depend on the request/);
  });
});
