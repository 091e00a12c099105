import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { bearer, makeTempDir, restartTestApp, startTestApp, type TestApp } from '../helpers/test-app';

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

function expectSafeFailure(res: request.Response): void {
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(JSON.stringify(res.body)).not.toMatch(/outside|passwd|\/tmp|ELOOP|symbolic/);
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

  const ids = [
    '..%2F..%2F..%2Fetc%2Fpasswd',
    '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '%252e%252e%252f%252e%252e%252fetc',
    '..%5C..%5Cwindows',
    '..%255C..%255C',
    '%00',
    'abc%00def',
    `${randomUUID()}%00`,
    '..',
    '.',
    '%2e%2e',
    '%E0%A4%A',
  ];

  it.each(ids)('%s is refused on every session route with a 4xx, touching nothing', async (id) => {
    const before = JSON.stringify((await readdir(t.dataDir, { recursive: true })).sort());
    const calls = [
      request(t.app).get(`/api/v1/sessions/${id}`).set(alice),
      request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).send({ title: 'x' }),
      request(t.app).delete(`/api/v1/sessions/${id}`).set(alice),
      request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'x' }),
      request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice),
    ];
    for (const res of await Promise.all(calls)) {
      expect([400, 404]).toContain(res.status);
      expectSafeFailure(res);
    }
    expect(JSON.stringify((await readdir(t.dataDir, { recursive: true })).sort())).toBe(before);
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
