/**
 * `/openapi.json` against reality: real requests to every route, successes and failures,
 * and each answer checked against the document - the operation exists for the route that
 * handled it (taken from the request log, so routing itself is checked), the status is
 * documented, the media type matches and the body validates against the schema. Every
 * documented operation must be exercised.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import Ajv2020 from 'ajv/dist/2020';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { createLogger } from '../../src/logger';
import { filePart, multipart } from '../helpers/multipart';
import { TEST_SECRET, bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

type Doc = {
  openapi: string;
  info: { version: string; license?: { name: string; identifier?: string } };
  tags?: Array<{ name: string; description?: string }>;
  paths: Record<
    string,
    Record<string, { tags?: string[]; responses: Record<string, { content?: Record<string, { schema: unknown }>; headers?: Record<string, unknown> }> }>
  >;
};

/** Headers the service adds to answers of many routes: each must be described wherever it is sent. */
const ANNOUNCED_HEADERS = ['X-Request-Id', 'RateLimit', 'RateLimit-Policy', 'Retry-After'];

let t: TestApp;
let doc: Doc;
let logText = '';
interface Answer {
  res: request.Response;
  method: string;
  path: string;
}
const answers: Answer[] = [];

forEachBackend((backend) => {
  beforeAll(async () => {
    // One document and one set of answers per backend: nothing carried over from the last one.
    answers.length = 0;
    logText = '';
    const stream = new PassThrough();
    stream.setEncoding('utf8').on('data', (chunk: string) => (logText += chunk));
    t = await startTestApp({ RATE_LIMIT_MAX: '60', MAX_UPLOAD_BYTES: '1024', USER_QUOTA_BYTES: '8192' }, { backend, logger: createLogger({ level: 'info', format: 'json' }, stream) });
    const res = await call(request(t.app).get('/openapi.json'));
    doc = res.body as Doc;
  });
  afterAll(() => t.close());

  function binary(req: request.Test): request.Test {
    return req.buffer(true).parse((res, done) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(null, Buffer.concat(chunks)));
    });
  }

  async function call(req: request.Test): Promise<request.Response> {
    const res = await req;
    answers.push({ res, method: req.method, path: new URL(req.url).pathname });
    return res;
  }

  async function exerciseEveryRoute(): Promise<void> {
    const app = t.app;
    const alice = bearer(t.token('alice'));
    await call(request(app).get('/healthz'));
    await call(request(app).get('/readyz'));
    t.service.setStarted(false);
    await call(request(app).get('/readyz'));
    t.service.setStarted(true);

    await call(request(app).get('/api/v1/me'));
    await call(request(app).get('/api/v1/me').set(alice));
    const created = await call(request(app).post('/api/v1/sessions').set(alice).send({ title: 'doc', state: { a: 1 } }));
    const id = created.body.id as string;
    await call(request(app).post('/api/v1/sessions').set(alice));
    await call(request(app).post('/api/v1/sessions').set(alice).send({ nope: 1 }));
    await call(request(app).post('/api/v1/sessions').set(alice).set('Content-Type', 'text/plain').send('x'));
    await call(request(app).post('/api/v1/sessions').set(alice).send({ state: { big: 'x'.repeat(5000) } }));
    await call(request(app).get('/api/v1/sessions?limit=1').set(alice));
    await call(request(app).get('/api/v1/sessions?limit=0').set(alice));
    await call(request(app).get(`/api/v1/sessions/${id}`).set(alice));
    await call(request(app).get(`/api/v1/sessions/${id}`).set(alice).set('If-None-Match', String(created.headers.etag)));
    await call(request(app).get('/api/v1/sessions/00000000-0000-4000-8000-000000000000').set(alice));
    await call(request(app).patch(`/api/v1/sessions/${id}`).set(alice).set('If-Match', '"v1"').send({ title: 'renamed' }));
    await call(request(app).patch(`/api/v1/sessions/${id}`).set(alice).set('If-Match', '"v1"').send({ title: 'again' }));
    await call(request(app).patch(`/api/v1/sessions/${id}`).set(alice).send({}));
    await call(request(app).patch(`/api/v1/sessions/${id}`).set(alice).set('Content-Type', 'text/plain').send('x'));
    await call(request(app).patch(`/api/v1/sessions/${id}`).set(alice).send({ state: { big: 'x'.repeat(3000) } }));
    await call(request(app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'hi', metadata: { k: 1 } }));
    await call(request(app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'robot', content: 'hi' }));
    await call(request(app).post(`/api/v1/sessions/${id}/messages`).set(alice).set('Content-Type', 'application/json').send('{"role":'));
    await call(request(app).post(`/api/v1/sessions/${id}/messages`).set(alice).set('Content-Type', 'text/plain').send('x'));
    await call(request(app).get(`/api/v1/sessions/${id}/messages?after=0&limit=10`).set(alice));
    await call(request(app).get(`/api/v1/sessions/${id}/messages?limit=abc`).set(alice));

    const upload = (parts: Parameters<typeof multipart>[0]) => {
      const body = multipart(parts);
      return request(app).post(`/api/v1/sessions/${id}/files`).set(alice).set('Content-Type', body.contentType).send(body.body);
    };
    const stored = await call(upload([filePart('a.csv', 'text/csv', 'a,b\n1,2\n')]));
    const fileId = stored.body.items[0].id as string;
    await call(upload([filePart('big.txt', 'text/plain', 'x'.repeat(2000))]));
    await call(upload([filePart('x.png', 'image/png', 'not a png')]));
    await call(upload([]));
    await call(request(app).post(`/api/v1/sessions/${id}/files`).set(alice).send({ a: 1 }));
    await call(upload([1, 2, 3, 4].map((i) => filePart(`${i}.txt`, 'text/plain', 'y'.repeat(1000)))));
    await call(upload([filePart('q1.txt', 'text/plain', 'q'.repeat(1000)), filePart('q2.txt', 'text/plain', 'q'.repeat(1000))]));
    await call(upload([filePart('q3.txt', 'text/plain', 'q'.repeat(1000)), filePart('q4.txt', 'text/plain', 'q'.repeat(1000))]));
    await call(request(app).get(`/api/v1/sessions/${id}/files`).set(alice));
    await call(binary(request(app).get(`/api/v1/sessions/${id}/files/${fileId}`).set(alice)));
    await call(binary(request(app).get(`/api/v1/sessions/${id}/files/${fileId}`).set(alice).set('Range', 'bytes=0-2')));
    await call(binary(request(app).get(`/api/v1/sessions/${id}/files/${fileId}`).set(alice).set('Range', 'bytes=100-')));
    await call(binary(request(app).get(`/api/v1/sessions/${id}/files/${fileId}`).set(alice).set('If-None-Match', `"sha256-${stored.body.items[0].sha256}"`)));
    await call(request(app).head(`/api/v1/sessions/${id}/files/${fileId}`).set(alice));
    await call(request(app).delete(`/api/v1/sessions/${id}/files/${fileId}`).set(alice));
    await call(request(app).delete(`/api/v1/sessions/${id}/files/${fileId}`).set(alice));
    await call(request(app).delete(`/api/v1/sessions/${id}`).set(alice));

    const bob = bearer(t.token('bob'));
    for (let i = 0; i < 61; i++) await call(request(app).get('/api/v1/me').set(bob));
    await call(request(app).delete('/api/v1/me').set(alice));
    const unsigned = jwt.sign({ sub: 'carol' }, TEST_SECRET, { algorithm: 'HS256' });
    await call(request(app).get('/api/v1/sessions').set(bearer(unsigned)));
  }

  function operationOf({ res, path: requestPath }: Answer): { path: string; method: string } | null {
    const requestId = res.headers['x-request-id'];
    const line = logText
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.category === 'request' && l.requestId === requestId);
    if (!line) throw new Error(`no request line for ${requestId}`);
    const method = String(line.method).toLowerCase();
    if (line.route !== '(unmatched)') return { path: String(line.route).replace(/:(\w+)/g, '{$1}'), method };
    // Refused before routing (authentication, rate limit, body parsing): match the path itself.
    const path = Object.keys(doc.paths).find((template) =>
      new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`).test(requestPath),
    );
    return path ? { path, method } : null;
  }

  describe('/openapi.json', () => {
    it('is an OpenAPI 3.1 document with components for every shape', () => {
      expect(doc.openapi).toBe('3.1.0');
      const ajv = new Ajv2020({ strict: false, validateFormats: false });
      expect(() => ajv.addSchema(doc, 'openapi.json')).not.toThrow();
    });

    it("states package.json's version and licence", () => {
      const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string; license: string };
      expect(doc.info.version).toBe(pkg.version);
      expect(doc.info.license?.name).toContain(pkg.license);
      expect(doc.info.license?.identifier).toBeDefined();
    });

    it('files every operation under one described tag per resource', () => {
      expect(doc.tags?.map((tag) => tag.name)).toEqual(['account', 'sessions', 'messages', 'files', 'health', 'description']);
      for (const tag of doc.tags ?? []) expect({ tag: tag.name, described: (tag.description ?? '').length > 0 }).toEqual({ tag: tag.name, described: true });
      const tagOf = Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([m, op]) => [`${m} ${p}`, op.tags] as const));
      expect(Object.fromEntries(tagOf)).toEqual({
        'get /healthz': ['health'],
        'get /readyz': ['health'],
        'get /openapi.json': ['description'],
        'get /api/v1/me': ['account'],
        'delete /api/v1/me': ['account'],
        'post /api/v1/sessions': ['sessions'],
        'get /api/v1/sessions': ['sessions'],
        'get /api/v1/sessions/{sessionId}': ['sessions'],
        'patch /api/v1/sessions/{sessionId}': ['sessions'],
        'delete /api/v1/sessions/{sessionId}': ['sessions'],
        'post /api/v1/sessions/{sessionId}/messages': ['messages'],
        'get /api/v1/sessions/{sessionId}/messages': ['messages'],
        'post /api/v1/sessions/{sessionId}/files': ['files'],
        'get /api/v1/sessions/{sessionId}/files': ['files'],
        'get /api/v1/sessions/{sessionId}/files/{fileId}': ['files'],
        'head /api/v1/sessions/{sessionId}/files/{fileId}': ['files'],
        'delete /api/v1/sessions/{sessionId}/files/{fileId}': ['files'],
      });
    });

    it("documents the 431 Node's HTTP server answers to oversized headers, on public and authenticated routes alike", async () => {
      const huge = { 'X-Padding': 'x'.repeat(20 * 1024) };
      for (const [route, template] of [
        ['/healthz', '/healthz'],
        ['/api/v1/sessions', '/api/v1/sessions'],
      ] as const) {
        const res = await request(t.app).get(route).set(huge);
        expect({ route, status: res.status }).toEqual({ route, status: 431 });
        expect(doc.paths[template]?.get?.responses['431']).toBeDefined();
      }
      for (const ops of Object.values(doc.paths)) for (const op of Object.values(ops)) expect(op.responses['431']).toBeDefined();
    });

    it('describes every real answer of every route, and every operation is exercised', async () => {
      await exerciseEveryRoute();
      const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
      ajv.addSchema(doc, 'openapi.json');
      const seen = new Set<string>();
      const statusesSeen = new Set<string>();
      const problems: string[] = [];

      for (const answer of answers) {
        const { res, method } = answer;
        const op = operationOf(answer);
        const what = `${method} ${answer.path} -> ${res.status}`;
        if (!op) {
          problems.push(`${what}: handled by no route`);
          continue;
        }
        const operation = doc.paths[op.path]?.[op.method];
        if (!operation) {
          problems.push(`${what}: ${op.method.toUpperCase()} ${op.path} is not in the document`);
          continue;
        }
        seen.add(`${op.method} ${op.path}`);
        statusesSeen.add(String(res.status));
        const response = operation.responses[String(res.status)];
        if (!response) {
          problems.push(`${what}: status not documented for ${op.path}`);
          continue;
        }
        for (const header of Object.keys(response.headers ?? {})) {
          if (res.headers[header.toLowerCase()] === undefined) problems.push(`${what}: documented header ${header} missing`);
        }
        for (const header of ANNOUNCED_HEADERS) {
          if (res.headers[header.toLowerCase()] !== undefined && !(header in (response.headers ?? {}))) problems.push(`${what}: sends ${header}, not documented`);
        }
        const contentType = String(res.headers['content-type'] ?? '').split(';')[0]!;
        if (!response.content) {
          if (method !== 'HEAD' && contentType !== '' && Number(res.headers['content-length'] ?? 0) > 0) problems.push(`${what}: undocumented body`);
          continue;
        }
        const [media] = Object.keys(response.content);
        if (media === '*/*' || method === 'HEAD') continue;
        if (contentType !== media) problems.push(`${what}: ${contentType} but documented ${media}`);
        const pointer = `/paths/${op.path.replace(/~/g, '~0').replace(/\//g, '~1')}/${op.method}/responses/${res.status}/content/${media!.replace(/\//g, '~1')}/schema`;
        const validate = ajv.compile({ $ref: `openapi.json#${pointer}` });
        const body: unknown = Buffer.isBuffer(res.body) ? JSON.parse(res.body.toString('utf8')) : res.body;
        if (!validate(body)) problems.push(`${what}: ${ajv.errorsText(validate.errors)}`);
      }

      expect(problems).toEqual([]);
      const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
      expect([...seen].sort()).toEqual(documented.sort());
      // The suite above really reached the error answers it claims to check.
      for (const status of ['200', '201', '204', '206', '304', '400', '401', '404', '412', '413', '415', '416', '429', '503', '507']) {
        expect({ status, seen: statusesSeen.has(status) }).toEqual({ status, seen: true });
      }
    });
  });
});
