/**
 * Messages through the real app on each backend under test: dense seqs, paging, limits.
 * How the fs backend lays them out on disk and recovers a torn log is tested under
 * tests/storage/fs.
 */
import request from 'supertest';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

let t: TestApp;
let alice: { Authorization: string };
let sessionId: string;

forEachBackend((backend) => {
  beforeEach(async () => {
    t = await startTestApp({}, { backend });
    alice = bearer(t.token('alice'));
    sessionId = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'chat' })).body.id;
  });
  afterEach(() => t.close());

  const messagesOf = (id: string) => `/api/v1/sessions/${id}/messages`;

  describe('messages', () => {
    it('appends a message and returns it with seq 1, 2, 3 ...', async () => {
      const first = await request(t.app).post(messagesOf(sessionId)).set(alice).send({ role: 'user', content: 'hello', metadata: { lang: 'en' } });
      expect(first.status).toBe(201);
      expect(first.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        seq: 1,
        role: 'user',
        content: 'hello',
        metadata: { lang: 'en' },
        createdAt: expect.any(String),
      });
      const second = await request(t.app).post(messagesOf(sessionId)).set(alice).send({ role: 'assistant', content: 'hi' });
      expect(second.body).toMatchObject({ seq: 2, metadata: {} });
    });

    it('keeps seq dense under 40 concurrent appends, each acknowledged message stored once', async () => {
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => request(t.app).post(messagesOf(sessionId)).set(alice).send({ role: 'user', content: `m${i}` })),
      );
      expect(results.every((r) => r.status === 201)).toBe(true);
      expect(results.map((r) => r.body.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      const listed = await request(t.app).get(messagesOf(sessionId)).query({ limit: 200 }).set(alice);
      expect(listed.body.items.map((m: { seq: number }) => m.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(new Set(listed.body.items.map((m: { content: string }) => m.content)).size).toBe(40);
    });

    it('near the quota, concurrent appends are admitted one by one: dense seqs, the rest 507, usage within the quota', async () => {
      const small = await startTestApp({ USER_QUOTA_BYTES: '4096' }, { backend });
      const bob = bearer(small.token('bob'));
      const id = (await request(small.app).post('/api/v1/sessions').set(bob).send({ title: 'chat' })).body.id;
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          request(small.app).post(messagesOf(id)).set(bob).send({ role: 'user', content: `${i}`.padEnd(150, '.') }),
        ),
      );
      const accepted = results.filter((r) => r.status === 201);
      expect(accepted.length).toBeGreaterThan(5);
      expect(accepted.length).toBeLessThan(30);
      expect(results.filter((r) => r.status !== 201).every((r) => r.status === 507 && r.body.limit === 'USER_QUOTA_BYTES')).toBe(true);
      const seqs = accepted.map((r) => r.body.seq).sort((a, b) => a - b);
      expect(seqs).toEqual(Array.from({ length: accepted.length }, (_, i) => i + 1));
      const listed = await request(small.app).get(messagesOf(id)).query({ limit: 100 }).set(bob);
      expect(listed.body.items.map((m: { content: string }) => m.content).sort()).toEqual(accepted.map((r) => r.body.content).sort());
      const me = await request(small.app).get('/api/v1/me').set(bob);
      expect(me.body.usage.bytes).toBeLessThanOrEqual(4096);
      await small.close();
    });

    it('lists oldest first with an after cursor', async () => {
      for (let i = 1; i <= 5; i++) {
        await request(t.app).post(messagesOf(sessionId)).set(alice).send({ role: 'user', content: `m${i}` }).expect(201);
      }
      const page1 = await request(t.app).get(messagesOf(sessionId)).query({ limit: 2 }).set(alice);
      expect(page1.body.items.map((m: { content: string }) => m.content)).toEqual(['m1', 'm2']);
      expect(page1.body.nextCursor).toBe(2);
      const page2 = await request(t.app).get(messagesOf(sessionId)).query({ limit: 2, after: page1.body.nextCursor }).set(alice);
      expect(page2.body.items.map((m: { content: string }) => m.content)).toEqual(['m3', 'm4']);
      const page3 = await request(t.app).get(messagesOf(sessionId)).query({ limit: 2, after: 4 }).set(alice);
      expect(page3.body).toMatchObject({ items: [expect.objectContaining({ content: 'm5' })], nextCursor: null });
      const beyond = await request(t.app).get(messagesOf(sessionId)).query({ after: 99 }).set(alice);
      expect(beyond.body).toEqual({ items: [], nextCursor: null });
    });

    it.each([
      ['an unknown role', { role: 'admin', content: 'x' }],
      ['a missing content', { role: 'user' }],
      ['an unknown field', { role: 'user', content: 'x', seq: 7 }],
      ['metadata that is not an object', { role: 'user', content: 'x', metadata: 'x' }],
    ])('refuses %s with 400 and stores nothing', async (_name, body) => {
      const res = await request(t.app).post(messagesOf(sessionId)).set(alice).send(body);
      expect(res.status).toBe(400);
      expect((await request(t.app).get(messagesOf(sessionId)).set(alice)).body.items).toEqual([]);
    });

    it('refuses a bad after or limit with 400', async () => {
      expect((await request(t.app).get(messagesOf(sessionId)).query({ after: '-1' }).set(alice)).status).toBe(400);
      expect((await request(t.app).get(messagesOf(sessionId)).query({ limit: 'many' }).set(alice)).status).toBe(400);
    });

    it('answers a message over MAX_MESSAGE_BYTES with 413 naming the limit', async () => {
      const res = await request(t.app)
        .post(messagesOf(sessionId))
        .set(alice)
        .send({ role: 'user', content: 'x'.repeat(t.config.limits.messageBytes + 1) });
      expect(res.status).toBe(413);
      expect(res.body.limit).toBe('MAX_MESSAGE_BYTES');
    });

    it('does not change the session document or its version', async () => {
      await request(t.app).post(messagesOf(sessionId)).set(alice).send({ role: 'user', content: 'x' }).expect(201);
      const session = await request(t.app).get(`/api/v1/sessions/${sessionId}`).set(alice);
      expect(session.body.version).toBe(1);
    });

    it('keeps a message with line breaks in it one message, read back as written', async () => {
      await request(t.app).post(messagesOf(sessionId)).set(alice).send({ role: 'user', content: 'line\nbreak\r\n' }).expect(201);
      await request(t.app).post(messagesOf(sessionId)).set(alice).send({ role: 'user', content: 'next' }).expect(201);
      const listed = await request(t.app).get(messagesOf(sessionId)).set(alice).expect(200);
      expect(listed.body.items.map((m: { seq: number; content: string }) => [m.seq, m.content])).toEqual([
        [1, 'line\nbreak\r\n'],
        [2, 'next'],
      ]);
    });
  });
});
