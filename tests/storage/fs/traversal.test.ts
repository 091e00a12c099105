/**
 * Traversal seen from the data directory: an encoded `..` in a session id or a refused token
 * naming a path as its user changes nothing on disk, and symbolic links planted in the
 * directory (as a user, a session or a session document) never let a request read, list,
 * write or delete anything outside it. What a client gets back for hostile ids, on every
 * backend: tests/http/traversal.test.ts and tests/http/token-attacks.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { ENCODED_TRAVERSAL_IDS, PATH_LIKE_USER_IDS, expectSafeFailure, onEverySessionRoute } from '../../helpers/hostile-inputs';
import { TEST_SECRET, bearer, makeTempDir, restartTestApp, startTestApp, type TestApp } from '../../helpers/test-app';

/** A directory outside the data dir holding something that looks like a session. */
async function plantOutside(): Promise<{ dir: string; sessionId: string; snapshot: () => Promise<string> }> {
  const dir = await makeTempDir('session-vault-outside-');
  const sessionId = randomUUID();
  await mkdir(path.join(dir, sessionId));
  const doc = { id: sessionId, title: 'outside', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', version: 1, state: { secret: 'outside' } };
  await writeFile(path.join(dir, sessionId, 'session.json'), JSON.stringify(doc));
  await writeFile(path.join(dir, 'session.json'), JSON.stringify({ ...doc, id: randomUUID() }));
  await writeFile(path.join(dir, 'passwd'), 'root:x:0:0');
  const snapshot = async () => {
    const entries = (await readdir(dir, { recursive: true })).sort();
    const contents = await Promise.all(
      entries.filter((e) => e.endsWith('.json') || e === 'passwd').map((e) => readFile(path.join(dir, e), 'utf8')),
    );
    return JSON.stringify({ entries, contents });
  };
  return { dir, sessionId, snapshot };
}

/** Every entry under the data directory, as one comparable string. */
async function treeOf(dataDir: string): Promise<string> {
  return JSON.stringify((await readdir(dataDir, { recursive: true })).sort());
}

describe('encoded traversal in ids', () => {
  let t: TestApp;
  let alice: { Authorization: string };
  beforeAll(async () => {
    t = await startTestApp();
    alice = bearer(t.token('alice'));
    await request(t.app).post('/api/v1/sessions').set(alice).expect(201);
  });
  afterAll(() => t.close());

  it.each(ENCODED_TRAVERSAL_IDS)('%s on every session route touches nothing in the data directory', async (id) => {
    const before = await treeOf(t.dataDir);
    for (const res of await Promise.all(onEverySessionRoute(t.app, alice, id))) expect([400, 404]).toContain(res.status);
    expect(await treeOf(t.dataDir)).toBe(before);
  });
});

describe('refused tokens', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it.each(PATH_LIKE_USER_IDS)('naming a user id with %s, create nothing in the data directory', async (_name, sub) => {
    const before = await treeOf(t.dataDir);
    const token = jwt.sign({ sub, exp: Math.floor(Date.now() / 1000) + 60 }, TEST_SECRET, { algorithm: 'HS256' });
    await request(t.app).get('/api/v1/me').set(bearer(token)).expect(401);
    await request(t.app).post('/api/v1/sessions').set(bearer(token)).send({ title: 'x' }).expect(401);
    await request(t.app).delete('/api/v1/me').set(bearer(token)).expect(401);
    expect(await treeOf(t.dataDir)).toBe(before);
    expect(await readdir(path.join(t.dataDir, 'sessions'))).toEqual([]);
  });

  it('refused for their signature, algorithm or expiry, and an accepted read of /me, create nothing either', async () => {
    const before = await treeOf(t.dataDir);
    const exp = Math.floor(Date.now() / 1000) + 60;
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const [header, , signature] = jwt.sign({ sub: 'alice', exp }, TEST_SECRET, { algorithm: 'HS256' }).split('.');
    const refused = [
      `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'bob', exp })}.`,
      jwt.sign({ sub: 'bob', exp }, 'another-secret-another-secret-another!', { algorithm: 'HS256' }),
      jwt.sign({ sub: 'bob', exp }, TEST_SECRET, { algorithm: 'HS512' }),
      jwt.sign({ sub: 'bob', exp: exp - 120 }, TEST_SECRET, { algorithm: 'HS256' }),
      `${header}.${b64({ sub: 'bob', exp })}.${signature}`,
    ];
    for (const token of refused) {
      await request(t.app).post('/api/v1/sessions').set(bearer(token)).send({ title: 'x' }).expect(401);
    }
    await request(t.app).get('/api/v1/me').set(bearer(t.token('alice'))).expect(200);
    expect(await treeOf(t.dataDir)).toBe(before);
    expect(await readdir(path.join(t.dataDir, 'sessions'))).toEqual([]);
  });
});

describe('symbolic links planted in the data directory', () => {
  let t: TestApp;
  let outside: Awaited<ReturnType<typeof plantOutside>>;
  let alice: { Authorization: string };

  beforeEach(async () => {
    outside = await plantOutside();
    t = await startTestApp();
    alice = bearer(t.token('alice'));
  });
  afterEach(async () => {
    await t.close();
    await rm(outside.dir, { recursive: true, force: true });
  });

  it('as a user directory: nothing outside is read, listed, written or deleted', async () => {
    await symlink(outside.dir, path.join(t.dataDir, 'sessions', 'alice'));
    const before = await outside.snapshot();
    const responses = [
      await request(t.app).get('/api/v1/sessions').set(alice),
      await request(t.app).get(`/api/v1/sessions/${outside.sessionId}`).set(alice),
      await request(t.app).patch(`/api/v1/sessions/${outside.sessionId}`).set(alice).send({ title: 'x' }),
      await request(t.app).post(`/api/v1/sessions/${outside.sessionId}/messages`).set(alice).send({ role: 'user', content: 'x' }),
      await request(t.app).get(`/api/v1/sessions/${outside.sessionId}/messages`).set(alice),
      await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'x' }),
      await request(t.app).delete(`/api/v1/sessions/${outside.sessionId}`).set(alice),
      await request(t.app).get('/api/v1/me').set(alice),
      await request(t.app).delete('/api/v1/me').set(alice),
    ];
    for (const res of responses) expectSafeFailure(res);
    expect(await outside.snapshot()).toBe(before);
    // Other users are unaffected.
    const bob = bearer(t.token('bob'));
    expect((await request(t.app).post('/api/v1/sessions').set(bob)).status).toBe(201);
  });

  it('as a session directory: nothing outside is read, listed, written or deleted', async () => {
    await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'real' }).expect(201);
    // A fresh process sees the planted link when it first loads the user.
    const restarted = (t = await restartTestApp(t));
    await symlink(path.join(outside.dir, outside.sessionId), path.join(t.dataDir, 'sessions', 'alice', outside.sessionId));
    const before = await outside.snapshot();
    const list = await request(restarted.app).get('/api/v1/sessions').set(alice);
    expect(list.status).toBe(200);
    expect(list.body.items.map((s: { title: string }) => s.title)).toEqual(['real']);
    const responses = [
      await request(restarted.app).get(`/api/v1/sessions/${outside.sessionId}`).set(alice),
      await request(restarted.app).patch(`/api/v1/sessions/${outside.sessionId}`).set(alice).send({ title: 'x' }),
      await request(restarted.app).post(`/api/v1/sessions/${outside.sessionId}/messages`).set(alice).send({ role: 'user', content: 'x' }),
      await request(restarted.app).get(`/api/v1/sessions/${outside.sessionId}/messages`).set(alice),
      await request(restarted.app).delete(`/api/v1/sessions/${outside.sessionId}`).set(alice),
    ];
    for (const res of responses) expectSafeFailure(res);
    expect(await outside.snapshot()).toBe(before);
  });

  it('as the session document inside a real session: it is never read or replaced', async () => {
    const { id } = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'real' })).body;
    const doc = path.join(t.dataDir, 'sessions', 'alice', id, 'session.json');
    await rm(doc);
    await symlink(path.join(outside.dir, 'session.json'), doc);
    const before = await outside.snapshot();
    // The process that wrote the document answers from what it wrote, never the link's target.
    const cached = await request(t.app).get(`/api/v1/sessions/${id}`).set(alice);
    expect(cached.body).toMatchObject({ id, title: 'real' });
    expect(JSON.stringify(cached.body)).not.toMatch(/outside/);
    // A fresh process has to go to disk, and refuses the link.
    const restarted = (t = await restartTestApp(t));
    expectSafeFailure(await request(restarted.app).get(`/api/v1/sessions/${id}`).set(alice));
    await request(restarted.app).patch(`/api/v1/sessions/${id}`).set(alice).send({ title: 'x' });
    await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).send({ title: 'x' });
    expect(await outside.snapshot()).toBe(before);
  });
});
