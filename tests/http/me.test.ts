import request from 'supertest';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

forEachBackend((backend) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp({}, { backend });
  });
  afterEach(() => t.close());

  describe('/api/v1/me', () => {
    it('reports the user id from the token, usage and limits', async () => {
      const alice = bearer(t.token('alice'));
      const empty = await request(t.app).get('/api/v1/me').set(alice);
      expect(empty.status).toBe(200);
      expect(empty.headers['cache-control']).toBe('no-store');
      expect(empty.body).toEqual({
        userId: 'alice',
        usage: { sessions: 0, files: 0, bytes: 0 },
        limits: expect.objectContaining({ sessions: t.config.limits.sessions, bytes: t.config.limits.bytes }),
      });
      const { id } = (await request(t.app).post('/api/v1/sessions').set(alice).send({ state: { a: 1 } })).body;
      await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'hi' }).expect(201);
      const used = await request(t.app).get('/api/v1/me').set(alice);
      expect(used.body.usage.sessions).toBe(1);
      expect(used.body.usage.bytes).toBeGreaterThan(100);
      await request(t.app).delete(`/api/v1/sessions/${id}`).set(alice).expect(204);
      expect((await request(t.app).get('/api/v1/me').set(alice)).body.usage).toEqual({ sessions: 0, files: 0, bytes: 0 });
    });

    it('ignores any attempt to name another user outside the token', async () => {
      const res = await request(t.app)
        .get('/api/v1/me?userId=bob&user_id=bob&sub=bob')
        .set(bearer(t.token('alice')))
        .set('X-User-Id', 'bob')
        .set('X-Forwarded-User', 'bob');
      expect(res.body.userId).toBe('alice');
    });

    it('erases all of the user and nothing of anyone else', async () => {
      const alice = bearer(t.token('alice'));
      const bob = bearer(t.token('bob'));
      for (let i = 0; i < 3; i++) await request(t.app).post('/api/v1/sessions').set(alice).expect(201);
      const bobs = (await request(t.app).post('/api/v1/sessions').set(bob).send({ title: 'mine' })).body.id;
      expect((await request(t.app).delete('/api/v1/me').set(alice)).status).toBe(204);
      expect((await request(t.app).get('/api/v1/sessions').set(alice)).body.items).toEqual([]);
      expect((await request(t.app).get('/api/v1/me').set(alice)).body.usage).toEqual({ sessions: 0, files: 0, bytes: 0 });
      expect((await request(t.app).get(`/api/v1/sessions/${bobs}`).set(bob)).body.title).toBe('mine');
      expect((await request(t.app).get('/api/v1/sessions').set(bob)).body.items).toHaveLength(1);
      expect((await request(t.app).get('/api/v1/me').set(bob)).body.usage.sessions).toBe(1);
      // The user can start again afterwards.
      await request(t.app).post('/api/v1/sessions').set(alice).expect(201);
    });

    it('refuses writes beyond USER_QUOTA_BYTES with a problem naming the limit', async () => {
      const small = await startTestApp({ USER_QUOTA_BYTES: '2048' }, { backend });
      const alice = bearer(small.token('alice'));
      try {
        const { id } = (await request(small.app).post('/api/v1/sessions').set(alice)).body;
        let res: request.Response;
        do {
          res = await request(small.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'x'.repeat(300) });
        } while (res.status === 201);
        expect(res.status).toBe(507);
        expect(res.body.limit).toBe('USER_QUOTA_BYTES');
        const me = await request(small.app).get('/api/v1/me').set(alice);
        expect(me.body.usage.bytes).toBeLessThanOrEqual(2048);
      } finally {
        await small.close();
      }
    });
  });
});
