/**
 * The log an operator reads: one line per request naming the route pattern, security events
 * in their own category, and never a token, a secret or anything a user stored.
 */
import { PassThrough } from 'node:stream';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { createLogger } from '../../src/logger';
import { filePart, multipart } from '../helpers/multipart';
import { TEST_SECRET, bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

let t: TestApp;
let logText: string;
const lines = () =>
  logText
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

forEachBackend((backend) => {
  beforeEach(async () => {
    const stream = new PassThrough();
    logText = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => (logText += chunk));
    t = await startTestApp({ RATE_LIMIT_MAX: '40' }, { backend, logger: createLogger({ level: 'debug', format: 'json' }, stream) });
  });
  afterEach(() => t.close());

  describe('request lines', () => {
    it('one per request, with the route pattern, status, duration, user and address', async () => {
      const alice = bearer(t.token('alice'));
      const { id } = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'x' })).body;
      await request(t.app).get(`/api/v1/sessions/${id}?x=1`).set(alice);
      await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'hi' });
      const up = multipart([filePart('a.txt', 'text/plain', 'hello')]);
      const file = (await request(t.app).post(`/api/v1/sessions/${id}/files`).set(alice).set('Content-Type', up.contentType).send(up.body)).body.items[0];
      await request(t.app).get(`/api/v1/sessions/${id}/files/${file.id}`).set(alice);
      await request(t.app).get('/healthz');
      await request(t.app).get('/no/such/thing');

      const requests = lines().filter((l) => l.category === 'request');
      expect(requests.map((l) => `${l.method} ${l.route} ${l.status}`)).toEqual([
        'POST /api/v1/sessions 201',
        'GET /api/v1/sessions/:sessionId 200',
        'POST /api/v1/sessions/:sessionId/messages 201',
        'POST /api/v1/sessions/:sessionId/files 201',
        'GET /api/v1/sessions/:sessionId/files/:fileId 200',
        'GET /healthz 200',
        'GET (unmatched) 404',
      ]);
      for (const line of requests) {
        expect(line).toMatchObject({ level: 'info', requestId: expect.any(String), durationMs: expect.any(Number), ip: expect.any(String) });
        expect(JSON.stringify(line)).not.toContain(id);
        expect(JSON.stringify(line)).not.toContain(file.id);
      }
      expect(requests.slice(0, 5).every((l) => l.userId === 'alice')).toBe(true);
    });

    it('none below LOG_LEVEL info, while warnings still are written', async () => {
      const stream = new PassThrough();
      let text = '';
      stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      const quiet = await startTestApp({}, { backend, logger: createLogger({ level: 'warn', format: 'json' }, stream) });
      try {
        await request(quiet.app).get('/api/v1/me').set(bearer(quiet.token('alice')));
        await request(quiet.app).get('/api/v1/me').set('Authorization', 'Bearer x.y.z');
      } finally {
        await quiet.close();
      }
      const written = text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(written.filter((l) => l.category === 'request')).toEqual([]);
      expect(written.filter((l) => l.category === 'security').map((l) => l.event)).toEqual(['token rejected']);
    });
  });

  describe('security events', () => {
    it('are warnings in their own category: token rejected with why, rate limited, upload refused', async () => {
      await request(t.app).get('/api/v1/me').set('Authorization', 'Bearer x.y.z');
      const expired = jwt.sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 60 }, TEST_SECRET, { algorithm: 'HS256' });
      await request(t.app).get('/api/v1/me').set(bearer(expired));
      const bob = bearer(t.token('bob'));
      const { id } = (await request(t.app).post('/api/v1/sessions').set(bob).send({})).body;
      const evil = multipart([filePart('x.png', 'image/png', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 1]))]);
      expect((await request(t.app).post(`/api/v1/sessions/${id}/files`).set(bob).set('Content-Type', evil.contentType).send(evil.body)).status).toBe(415);
      for (let i = 0; i < 40; i++) await request(t.app).get('/api/v1/me').set(bob);

      const security = lines().filter((l) => l.category === 'security');
      for (const line of security) expect(line.level).toBe('warn');
      const events = security.map((l) => l.event);
      expect(events).toEqual(expect.arrayContaining(['token rejected', 'upload refused', 'rate limited']));
      const reasons = security.filter((l) => l.event === 'token rejected').map((l) => String(l.reason));
      expect(reasons.some((r) => /malformed|invalid/.test(r))).toBe(true);
      expect(reasons.some((r) => /expired/.test(r))).toBe(true);
      expect(security.find((l) => l.event === 'upload refused')).toMatchObject({ userId: 'bob', status: 415, reason: expect.stringMatching(/ELF/) });
      expect(security.find((l) => l.event === 'rate limited')).toMatchObject({ userId: 'bob', limit: 'user' });
    });
  });

  describe('what is never logged', () => {
    it('no token, secret, state, message or file content after a full run of requests', async () => {
      const token = t.token('alice');
      const alice = bearer(token);
      const secrets = {
        token,
        signature: token.split('.')[2]!,
        jwtSecret: TEST_SECRET,
        state: 'STATE-CANARY-51f0',
        message: 'MESSAGE-CANARY-9ac2',
        metadata: 'META-CANARY-77d1',
        file: 'FILE-CANARY-3b6e',
        title: 'TITLE-CANARY-c0de',
      };
      const { id } = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: secrets.title, state: { s: secrets.state } })).body;
      await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).set('If-Match', '"v1"').send({ state: { s: secrets.state } });
      await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).set('If-Match', '"v1"').send({ state: { s: secrets.state } });
      await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: secrets.message, metadata: { m: secrets.metadata } });
      await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'nobody', content: secrets.message });
      await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).set('Content-Type', 'application/json').send(`{"content":"${secrets.message}`);
      const good = multipart([filePart('f.txt', 'text/plain', secrets.file)]);
      const fileId = (await request(t.app).post(`/api/v1/sessions/${id}/files`).set(alice).set('Content-Type', good.contentType).send(good.body)).body.items[0].id;
      const bad = multipart([filePart('f.png', 'image/png', secrets.file)]);
      await request(t.app).post(`/api/v1/sessions/${id}/files`).set(alice).set('Content-Type', bad.contentType).send(bad.body);
      await request(t.app).get(`/api/v1/sessions/${id}/files/${fileId}`).set(alice);
      await request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice);
      await request(t.app).get(`/api/v1/sessions?cursor=${secrets.token}`).set(alice);
      await request(t.app).get('/api/v1/me').set('Authorization', `Bearer ${token}x`);
      await request(t.app).get('/api/v1/me').set('Authorization', `Basic ${secrets.token}`);
      await request(t.app).get(`/api/v1/me?access_token=${token}`);
      await request(t.app).delete(`/api/v1/sessions/${id}`).set(alice);

      expect(lines().length).toBeGreaterThan(15);
      for (const [what, value] of Object.entries(secrets)) {
        expect({ what, found: logText.includes(value) }).toEqual({ what, found: false });
      }
    });
  });
});
