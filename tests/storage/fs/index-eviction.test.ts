/**
 * Per-user memory is bounded: the indexes of idle users are dropped beyond
 * USER_INDEX_CACHE_BYTES and rebuilt from disk when the user comes back, with nothing lost;
 * a user with an upload in flight is never dropped under it.
 */
import request from 'supertest';
import type { FsOpenedStorage } from '../../../src/storage/fs/open';
import { filePart, multipart } from '../../helpers/multipart';
import { bearer, startTestApp, type TestApp } from '../../helpers/test-app';

let t: TestApp;
const BUDGET = 1024 * 1024;

beforeEach(async () => {
  t = await startTestApp({ USER_INDEX_CACHE_BYTES: String(BUDGET), RATE_LIMIT_MAX: '100000', RATE_LIMIT_IP_MAX: '100000' });
});
afterEach(() => t.close());

const fsBackend = () => (t.service.storage as FsOpenedStorage).fsBackend;
const cache = () => fsBackend().indexCache;

it('keeps the indexes within the budget however many users come, and a returning user finds everything', async () => {
  const users = 1500;
  for (let i = 0; i < users; i++) {
    await request(t.app).post('/api/v1/sessions').set(bearer(t.token(`user-${i}`))).send({ title: `of user ${i}` }).expect(201);
  }
  expect(cache().bytes).toBeLessThanOrEqual(BUDGET);
  expect(cache().users).toBeLessThan(users);
  expect(cache().has('user-0')).toBe(false);
  for (const i of [0, 1, 700, users - 1]) {
    const list = await request(t.app).get('/api/v1/sessions').set(bearer(t.token(`user-${i}`))).expect(200);
    expect(list.body.items.map((s: { title: string }) => s.title)).toEqual([`of user ${i}`]);
    const me = await request(t.app).get('/api/v1/me').set(bearer(t.token(`user-${i}`))).expect(200);
    expect(me.body.usage.sessions).toBe(1);
  }
  // 1,500 users' durable session creations, one after another: tens of seconds on a busy machine.
}, 180_000);

it('never drops the index of a user whose upload is in flight', async () => {
  const alice = bearer(t.token('alice'));
  const sessionId = (await request(t.app).post('/api/v1/sessions').set(alice).send({}).expect(201)).body.id as string;
  // An upload begun and not finished: it holds reservations in alice's index.
  const quota = await fsBackend().beginUpload('alice', sessionId, { admit: () => undefined, admitFile: () => undefined });
  expect(quota).not.toBeNull();
  for (let i = 0; i < 2000; i++) await request(t.app).get('/api/v1/me').set(bearer(t.token(`visitor-${i}`))).expect(200);
  expect(cache().has('alice')).toBe(true);
  await quota!.release();
  for (let i = 2000; i < 4000; i++) await request(t.app).get('/api/v1/me').set(bearer(t.token(`visitor-${i}`))).expect(200);
  expect(cache().has('alice')).toBe(false);
}, 180_000);

it('the upload\'s file committed after eviction pressure is counted exactly once', async () => {
  const alice = bearer(t.token('alice'));
  const sessionId = (await request(t.app).post('/api/v1/sessions').set(alice).send({}).expect(201)).body.id as string;
  const body = multipart([filePart('a.txt', 'text/plain', 'hello')]);
  const pending = request(t.app).post(`/api/v1/sessions/${sessionId}/files`).set(alice).set('Content-Type', body.contentType).send(body.body);
  for (let i = 0; i < 400; i++) await request(t.app).get('/api/v1/me').set(bearer(t.token(`visitor-${i}`))).expect(200);
  expect((await pending).status).toBe(201);
  const me = await request(t.app).get('/api/v1/me').set(alice).expect(200);
  expect(me.body.usage.files).toBe(1);
});
