/**
 * `/docs`, the reference page: served with its own CSP in development and test, absent in
 * production unless API_DOCS=on, and everything it loads served by the service itself.
 */
import request from 'supertest';
import { configFor, startTestApp, type TestApp } from '../helpers/test-app';

const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async function withApp(env: Record<string, string>, check: (t: TestApp) => Promise<void>): Promise<void> {
  const t = await startTestApp(env);
  try {
    await check(t);
  } finally {
    await t.close();
  }
}

describe('/docs', () => {
  it('is on by default outside production, off by default in production, and API_DOCS decides when set', () => {
    expect(configFor({ NODE_ENV: 'development' }).apiDocs).toBe(true);
    expect(configFor({ NODE_ENV: 'test' }).apiDocs).toBe(true);
    expect(configFor({ NODE_ENV: 'production' }).apiDocs).toBe(false);
    expect(configFor({ NODE_ENV: 'production', API_DOCS: 'on' }).apiDocs).toBe(true);
    expect(configFor({ NODE_ENV: 'development', API_DOCS: 'off' }).apiDocs).toBe(false);
    expect(() => configFor({ API_DOCS: 'yes' })).toThrow('API_DOCS: must be on or off');
  });

  it('answers 200 with an HTML page under its own CSP in development, which loads only what the service serves', async () => {
    await withApp({ NODE_ENV: 'development' }, async (t) => {
      const page = await request(t.app).get('/docs');
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['content-security-policy']).toBe(PAGE_CSP);
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      expect(page.text).toContain('<redoc spec-url="/openapi.json"></redoc>');
      // Every script, style sheet and image the page names is a path of this service or inline data.
      const sources = [...page.text.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
      expect(sources.sort()).toEqual(['/docs/redoc.standalone.js', 'data:,']);

      const script = await request(t.app).get('/docs/redoc.standalone.js');
      expect(script.status).toBe(200);
      expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(script.text.length).toBeGreaterThan(500_000);
      // The one third-party address in the bundle (a logo) is gone: the page asks no one else for anything.
      expect(script.text).not.toMatch(/cdn\.redoc\.ly/);

      const again = await request(t.app).get('/docs/redoc.standalone.js').set('If-None-Match', String(script.headers.etag));
      expect(again.status).toBe(304);

      const document = await request(t.app).get('/openapi.json');
      expect(document.status).toBe(200);
    });
  });

  it('is a 404 problem in production by default, the script too', async () => {
    await withApp({ NODE_ENV: 'production' }, async (t) => {
      for (const path of ['/docs', '/docs/redoc.standalone.js']) {
        const res = await request(t.app).get(path);
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
      expect((await request(t.app).get('/openapi.json')).status).toBe(200);
    });
  });

  it('answers 200 in production with API_DOCS=on', async () => {
    await withApp({ NODE_ENV: 'production', API_DOCS: 'on' }, async (t) => {
      const page = await request(t.app).get('/docs');
      expect(page.status).toBe(200);
      expect(page.headers['content-security-policy']).toBe(PAGE_CSP);
      expect((await request(t.app).get('/docs/redoc.standalone.js')).status).toBe(200);
    });
  });

  it('is a 404 in development with API_DOCS=off', async () => {
    await withApp({ NODE_ENV: 'development', API_DOCS: 'off' }, async (t) => {
      expect((await request(t.app).get('/docs')).status).toBe(404);
    });
  });
});
