/**
 * The matrix: for every route that takes a session id, user B asking for user A's session
 * gets exactly what asking for a session that never existed (or was deleted) gets, and
 * A's data is unchanged afterwards.
 */
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { filePart, multipart } from '../helpers/multipart';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

let t: TestApp;
let alice: { Authorization: string };
let bob: { Authorization: string };
let aliceSession: string;
let deletedSession: string;
let aliceFile: string;
let bobSession: string;

const upload = multipart([filePart('injected.txt', 'text/plain', 'from bob')]);

type Call = (id: string) => request.Test;

const routes: Array<[string, Call]> = [
  ['GET session', (id) => request(t.app).get(`/api/v1/sessions/${id}`).set(bob)],
  ['PATCH session', (id) => request(t.app).patch(`/api/v1/sessions/${id}`).set(bob).send({ title: 'stolen' })],
  ['PATCH session with If-Match', (id) => request(t.app).patch(`/api/v1/sessions/${id}`).set(bob).set('If-Match', '"v1"').send({ state: {} })],
  ['PATCH session with If-Match *', (id) => request(t.app).patch(`/api/v1/sessions/${id}`).set(bob).set('If-Match', '*').send({ state: {} })],
  ['DELETE session', (id) => request(t.app).delete(`/api/v1/sessions/${id}`).set(bob)],
  ['POST message', (id) => request(t.app).post(`/api/v1/sessions/${id}/messages`).set(bob).send({ role: 'user', content: 'injected' })],
  ['GET messages', (id) => request(t.app).get(`/api/v1/sessions/${id}/messages`).set(bob)],
  ['GET messages after', (id) => request(t.app).get(`/api/v1/sessions/${id}/messages?after=0&limit=5`).set(bob)],
  ['POST files', (id) => request(t.app).post(`/api/v1/sessions/${id}/files`).set(bob).set('Content-Type', upload.contentType).send(upload.body)],
  ['GET files', (id) => request(t.app).get(`/api/v1/sessions/${id}/files`).set(bob)],
  ['GET file', (id) => request(t.app).get(`/api/v1/sessions/${id}/files/${aliceFile}`).set(bob)],
  ['GET file with Range', (id) => request(t.app).get(`/api/v1/sessions/${id}/files/${aliceFile}`).set(bob).set('Range', 'bytes=0-3')],
  ['DELETE file', (id) => request(t.app).delete(`/api/v1/sessions/${id}/files/${aliceFile}`).set(bob)],
];

function shape(res: request.Response) {
  const { requestId, ...rest } = res.body as Record<string, unknown>;
  return { status: res.status, contentType: res.headers['content-type'], body: rest, hasRequestId: typeof requestId === 'string' };
}

async function snapshotOfAlice() {
  const session = await request(t.app).get(`/api/v1/sessions/${aliceSession}`).set(alice);
  const messages = await request(t.app).get(`/api/v1/sessions/${aliceSession}/messages`).set(alice);
  const list = await request(t.app).get('/api/v1/sessions').set(alice);
  const me = await request(t.app).get('/api/v1/me').set(alice);
  const files = await request(t.app).get(`/api/v1/sessions/${aliceSession}/files`).set(alice);
  const file = await request(t.app).get(`/api/v1/sessions/${aliceSession}/files/${aliceFile}`).set(alice);
  return { session: session.body, messages: messages.body, list: list.body, usage: me.body.usage, files: files.body, file: file.text };
}

forEachBackend((backend) => {
  beforeAll(async () => {
    t = await startTestApp({}, { backend });
    alice = bearer(t.token('alice'));
    bob = bearer(t.token('bob'));
    aliceSession = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'secret', state: { plan: 'x' } })).body.id;
    await request(t.app).post(`/api/v1/sessions/${aliceSession}/messages`).set(alice).send({ role: 'user', content: 'private' }).expect(201);
    aliceFile = (
      await request(t.app)
        .post(`/api/v1/sessions/${aliceSession}/files`)
        .set(alice)
        .attach('file', Buffer.from('private,figures\n1,2\n'), { filename: 'secret.csv', contentType: 'text/csv' })
        .expect(201)
    ).body.items[0].id;
    // Bob has a session of his own, so his store is not empty.
    bobSession = (await request(t.app).post('/api/v1/sessions').set(bob).send({ title: 'bob' }).expect(201)).body.id;
    deletedSession = (await request(t.app).post('/api/v1/sessions').set(bob)).body.id;
    await request(t.app).delete(`/api/v1/sessions/${deletedSession}`).set(bob).expect(204);
  });
  afterAll(() => t.close());

  describe.each(routes)('%s', (_name, call) => {
    it("answers another user's session exactly like a missing or deleted one, and changes nothing", async () => {
      const before = await snapshotOfAlice();
      const foreign = await call(aliceSession);
      const missing = await call(randomUUID());
      const deleted = await call(deletedSession);
      expect(foreign.status).toBe(404);
      expect(shape(foreign)).toEqual(shape(missing));
      expect(shape(foreign)).toEqual(shape(deleted));
      expect(JSON.stringify(foreign.body)).not.toMatch(/secret|private|alice/);
      expect(await snapshotOfAlice()).toEqual(before);
    });

    it('answers a malformed id the same way for every user', async () => {
      const asBob = await call('not-a-session-id');
      const asAlice = await call('not-a-session-id').set(alice);
      expect(shape(asBob)).toEqual(shape(asAlice));
      expect([400, 404]).toContain(asBob.status);
    });
  });

  describe('file ids', () => {
    const fileRoutes: Array<[string, (who: { Authorization: string }, sessionId: string, fileId: string) => request.Test]> = [
      ['GET', (who, s, f) => request(t.app).get(`/api/v1/sessions/${s}/files/${f}`).set(who)],
      ['HEAD', (who, s, f) => request(t.app).head(`/api/v1/sessions/${s}/files/${f}`).set(who)],
      ['DELETE', (who, s, f) => request(t.app).delete(`/api/v1/sessions/${s}/files/${f}`).set(who)],
    ];

    it.each(fileRoutes)("%s of another user's file id under one's own session is a plain 404", async (_m, call) => {
      const before = await snapshotOfAlice();
      const foreign = await call(bob, bobSession, aliceFile);
      const missing = await call(bob, bobSession, randomUUID());
      expect(foreign.status).toBe(404);
      expect(shape(foreign)).toEqual(shape(missing));
      expect(await snapshotOfAlice()).toEqual(before);
    });

    it.each(fileRoutes)('%s of a file id from another of one\'s own sessions is a plain 404', async (_m, call) => {
      const otherOwn = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'other' }).expect(201)).body.id;
      const before = await snapshotOfAlice();
      const elsewhere = await call(alice, otherOwn, aliceFile);
      const missing = await call(alice, otherOwn, randomUUID());
      expect(elsewhere.status).toBe(404);
      expect(shape(elsewhere)).toEqual(shape(missing));
      expect(await snapshotOfAlice()).toEqual(before);
      await request(t.app).delete(`/api/v1/sessions/${otherOwn}`).set(alice).expect(204);
    });
  });

  describe('listing and usage', () => {
    it("never includes another user's sessions or bytes", async () => {
      const list = await request(t.app).get('/api/v1/sessions').set(bob);
      expect(list.body.items.map((s: { title: string }) => s.title)).toEqual(['bob']);
      const me = await request(t.app).get('/api/v1/me').set(bob);
      expect(me.body.usage.sessions).toBe(1);
    });

    it("cannot page into another user's listing with their cursor: it is refused like a forged one", async () => {
      for (let i = 0; i < 3; i++) await request(t.app).post('/api/v1/sessions').set(alice).expect(201);
      const page = await request(t.app).get('/api/v1/sessions?limit=1').set(alice);
      expect(page.body.nextCursor).toEqual(expect.any(String));
      const asBob = await request(t.app).get('/api/v1/sessions').query({ cursor: page.body.nextCursor }).set(bob);
      const forged = await request(t.app).get('/api/v1/sessions').query({ cursor: 'bm90LW91cnM.AAAAAAAAAAAAAAAAAAAAAA' }).set(bob);
      expect(asBob.status).toBe(400);
      expect({ ...asBob.body, requestId: '' }).toEqual({ ...forged.body, requestId: '' });
      const asAlice = await request(t.app).get('/api/v1/sessions').query({ cursor: page.body.nextCursor }).set(alice);
      expect(asAlice.status).toBe(200);
    });

    it("DELETE /me of one user leaves the other's data whole", async () => {
      const carol = bearer(t.token('carol'));
      await request(t.app).post('/api/v1/sessions').set(carol).expect(201);
      const before = await snapshotOfAlice();
      await request(t.app).delete('/api/v1/me').set(carol).expect(204);
      expect(await snapshotOfAlice()).toEqual(before);
    });
  });
});
