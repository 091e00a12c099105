/**
 * Session ids that try to leave the user's storage (`..`, encoded slashes, NUL) are refused
 * on every route with a 4xx that names no path, and change nothing the user can see. That
 * they leave the data directory alone, and what planted symbolic links do there, is the fs
 * backend's concern: tests/storage/fs/traversal.test.ts.
 */
import request from 'supertest';
import { ENCODED_TRAVERSAL_IDS, expectSafeFailure, onEverySessionRoute } from '../helpers/hostile-inputs';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

forEachBackend((backend) => {
  describe('encoded traversal in ids', () => {
    let t: TestApp;
    let alice: { Authorization: string };
    let sessionId: string;
    beforeAll(async () => {
      t = await startTestApp({}, { backend });
      alice = bearer(t.token('alice'));
      sessionId = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'mine', state: { k: 1 } }).expect(201)).body.id;
      await request(t.app).post(`/api/v1/sessions/${sessionId}/messages`).set(alice).send({ role: 'user', content: 'kept' }).expect(201);
    });
    afterAll(() => t.close());

    async function whatAliceSees() {
      const list = await request(t.app).get('/api/v1/sessions').set(alice).expect(200);
      const session = await request(t.app).get(`/api/v1/sessions/${sessionId}`).set(alice).expect(200);
      const messages = await request(t.app).get(`/api/v1/sessions/${sessionId}/messages`).set(alice).expect(200);
      const me = await request(t.app).get('/api/v1/me').set(alice).expect(200);
      return { list: list.body, session: session.body, messages: messages.body, usage: me.body.usage };
    }

    it.each(ENCODED_TRAVERSAL_IDS)('%s is refused on every session route with a 4xx, changing nothing', async (id) => {
      const before = await whatAliceSees();
      for (const res of await Promise.all(onEverySessionRoute(t.app, alice, id))) {
        expect([400, 404]).toContain(res.status);
        expectSafeFailure(res);
      }
      expect(await whatAliceSees()).toEqual(before);
    });
  });
});
