/**
 * Damage on disk stays contained: a cut session document, a mangled file list or a bad line
 * in a message log makes that one session unusable (and deletable), never the user's other
 * sessions; a torn log tail left by a crash is cut off and the history goes on. The damage is
 * done to the fs backend's files by hand, so these run on the fs backend only; what a client
 * gets back is checked over HTTP.
 */
import { appendFile, mkdir, readFile, rm, stat, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import request from 'supertest';
import { createLogger } from '../../../src/logger';
import { filePart, multipart } from '../../helpers/multipart';
import { bearer, restartTestApp, startTestApp, type TestApp } from '../../helpers/test-app';

let t: TestApp;
let logText: string;
let alice: { Authorization: string };

function logger() {
  const stream = new PassThrough();
  stream.setEncoding('utf8').on('data', (chunk: string) => (logText += chunk));
  return createLogger({ level: 'info', format: 'json' }, stream);
}

const logLines = () =>
  logText
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** A restart with the same data directory, as after the operator damaged something. */
async function restart(): Promise<void> {
  t = await restartTestApp(t, {}, { logger: logger() });
}

beforeEach(async () => {
  logText = '';
  t = await startTestApp({}, { logger: logger() });
  alice = bearer(t.token('alice'));
});
afterEach(() => t.close());

const sessionDir = (id: string) => path.join(t.dataDir, 'sessions', 'alice', id);

async function createSession(title: string): Promise<string> {
  const res = await request(t.app).post('/api/v1/sessions').set(alice).send({ title, state: { title } }).expect(201);
  return res.body.id as string;
}

async function appendMessages(id: string, ...contents: string[]): Promise<void> {
  for (const content of contents) {
    await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content }).expect(201);
  }
}

function expectDamaged(res: request.Response): void {
  expect(res.status).toBe(500);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: '/problems/session-damaged', status: 500 });
  expect(JSON.stringify(res.body)).not.toMatch(/sessions\/|\.json|SyntaxError|Unexpected|stack/);
}

/** Every route of a session, as the damaged one must refuse them (DELETE aside). */
function sessionRequests(id: string) {
  const up = multipart([filePart('a.txt', 'text/plain', 'hello')]);
  const missingFile = '00000000-0000-4000-8000-000000000000';
  return [
    request(t.app).get(`/api/v1/sessions/${id}`).set(alice),
    request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).send({ title: 'x' }),
    request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'x' }),
    request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice),
    request(t.app).post(`/api/v1/sessions/${id}/files`).set(alice).set('Content-Type', up.contentType).send(up.body),
    request(t.app).get(`/api/v1/sessions/${id}/files`).set(alice),
    request(t.app).get(`/api/v1/sessions/${id}/files/${missingFile}`).set(alice),
  ];
}

describe('a damaged session document', () => {
  let healthy: string;
  let damaged: string;
  let damagedBytes: number;

  beforeEach(async () => {
    healthy = await createSession('healthy');
    damaged = await createSession('damaged');
    await appendMessages(damaged, 'one', 'two');
    const document = path.join(sessionDir(damaged), 'session.json');
    const { size } = await stat(document);
    await truncate(document, Math.floor(size / 2));
    damagedBytes = Math.floor(size / 2) + (await stat(path.join(sessionDir(damaged), 'messages.jsonl'))).size;
    await restart();
  });

  it('leaves the user\'s other sessions, listing, usage and creation working', async () => {
    const list = await request(t.app).get('/api/v1/sessions').set(alice).expect(200);
    expect(list.body.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: healthy, title: 'healthy', version: 1 }),
        expect.objectContaining({ id: damaged, damaged: true, version: 0 }),
      ]),
    );
    expect(list.body.items.find((s: { id: string }) => s.id === healthy).damaged).toBeUndefined();
    await request(t.app).get(`/api/v1/sessions/${healthy}`).set(alice).expect(200);
    await request(t.app).patch(`/api/v1/sessions/${healthy}`).set(alice).send({ title: 'still fine' }).expect(200);
    await appendMessages(healthy, 'hello');
    await createSession('new');
    const me = await request(t.app).get('/api/v1/me').set(alice).expect(200);
    expect(me.body.usage.sessions).toBe(3);
  });

  it('answers every request for it with a session-damaged problem that names no path or content, and can be deleted', async () => {
    for (const pending of sessionRequests(damaged)) expectDamaged(await pending);
    const before = (await request(t.app).get('/api/v1/me').set(alice)).body.usage.bytes as number;
    await request(t.app).delete(`/api/v1/sessions/${damaged}`).set(alice).expect(204);
    const after = (await request(t.app).get('/api/v1/me').set(alice)).body.usage;
    // Its bytes counted until it was deleted.
    expect(before - after.bytes).toBe(damagedBytes);
    expect(after.sessions).toBe(1);
    await request(t.app).get(`/api/v1/sessions/${damaged}`).set(alice).expect(404);
  });

  it('is logged once as a security event naming user and session, not once per request', async () => {
    for (const pending of sessionRequests(damaged)) await pending;
    await request(t.app).get('/api/v1/sessions').set(alice);
    const events = logLines().filter((l) => l.message === 'session damaged');
    expect(events).toEqual([expect.objectContaining({ category: 'security', userId: 'alice', sessionId: damaged, what: 'session document' })]);
    expect(logText).not.toMatch(/unhandled error/);
  });

  it('is invisible to another user: the same 404 as a session that never existed', async () => {
    const bob = bearer(t.token('bob'));
    const res = await request(t.app).get(`/api/v1/sessions/${damaged}`).set(bob);
    const missing = await request(t.app).get('/api/v1/sessions/00000000-0000-4000-8000-000000000000').set(bob);
    expect(res.status).toBe(404);
    expect({ ...res.body, requestId: '' }).toEqual({ ...missing.body, requestId: '' });
  });
});

describe('other damage inside a session', () => {
  it('a document that parses but is not a session (wrong id, no version) is damaged too', async () => {
    const id = await createSession('odd');
    await writeFile(path.join(sessionDir(id), 'session.json'), JSON.stringify({ id: 'someone-else', title: 'x' }));
    await restart();
    expectDamaged(await request(t.app).get(`/api/v1/sessions/${id}`).set(alice));
  });

  it('a mangled file list makes the session damaged, and its files still count until it is deleted', async () => {
    const id = await createSession('files');
    const up = multipart([filePart('a.txt', 'text/plain', 'x'.repeat(1000))]);
    await request(t.app).post(`/api/v1/sessions/${id}/files`).set(alice).set('Content-Type', up.contentType).send(up.body).expect(201);
    const usageBefore = (await request(t.app).get('/api/v1/me').set(alice)).body.usage.bytes as number;
    await writeFile(path.join(sessionDir(id), 'files.json'), '[{"id": "not a record"');
    await restart();
    expectDamaged(await request(t.app).get(`/api/v1/sessions/${id}/files`).set(alice));
    const me = await request(t.app).get('/api/v1/me').set(alice).expect(200);
    // The list itself shrank by what was cut from it; the 1000 bytes of the file still count.
    expect(me.body.usage.bytes).toBeGreaterThanOrEqual(usageBefore - 200);
    expect(me.body.usage.bytes).toBeGreaterThan(1000);
    await request(t.app).delete(`/api/v1/sessions/${id}`).set(alice).expect(204);
  });

  it('a document damaged while the service runs is caught on its next read from disk', async () => {
    const restarted = await startTestApp({ SESSION_CACHE_BYTES: '0' }, { logger: logger() });
    try {
      const bearerAlice = bearer(restarted.token('alice'));
      const id = (await request(restarted.app).post('/api/v1/sessions').set(bearerAlice).send({ title: 'x' })).body.id as string;
      await writeFile(path.join(restarted.dataDir, 'sessions', 'alice', id, 'session.json'), '{"id":');
      expectDamaged(await request(restarted.app).get(`/api/v1/sessions/${id}`).set(bearerAlice));
      const list = await request(restarted.app).get('/api/v1/sessions').set(bearerAlice).expect(200);
      expect(list.body.items[0]).toMatchObject({ id, damaged: true });
    } finally {
      await restarted.close();
    }
  });
});

describe('message logs after a crash', () => {
  let id: string;
  let log: string;
  beforeEach(async () => {
    id = await createSession('chat');
    await appendMessages(id, 'one', 'two', 'three');
    log = path.join(sessionDir(id), 'messages.jsonl');
  });

  const contents = async () =>
    ((await request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice).expect(200)).body.items as Array<{ content: string; seq: number }>).map(
      (m) => `${m.seq}:${m.content}`,
    );

  it('a torn last line ending in a newline (half a JSON line) is cut off, logged once, and seq goes on densely', async () => {
    const torn = '{"id":"4c7e","seq":4,"role":"us\n';
    await appendFile(log, torn);
    await restart();
    expect(await contents()).toEqual(['1:one', '2:two', '3:three']);
    await appendMessages(id, 'four');
    expect(await contents()).toEqual(['1:one', '2:two', '3:three', '4:four']);
    expect((await readFile(log, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l).seq)).toEqual([1, 2, 3, 4]);
    const cut = logLines().filter((l) => l.message === 'message log torn tail cut');
    expect(cut).toEqual([expect.objectContaining({ userId: 'alice', sessionId: id, bytes: Buffer.byteLength(torn) })]);
  });

  it('a last line of zeros (what some filesystems leave after a power cut) is a torn tail too', async () => {
    await appendFile(log, Buffer.concat([Buffer.alloc(200), Buffer.from('\n')]));
    await restart();
    expect(await contents()).toEqual(['1:one', '2:two', '3:three']);
    await appendMessages(id, 'four');
    expect(await contents()).toEqual(['1:one', '2:two', '3:three', '4:four']);
  });

  it('the usage shrinks by the bytes cut, so /me matches the disk', async () => {
    const before = (await request(t.app).get('/api/v1/me').set(alice)).body.usage.bytes as number;
    await appendFile(log, '{"torn":');
    await restart();
    await contents();
    const after = (await request(t.app).get('/api/v1/me').set(alice)).body.usage.bytes as number;
    expect(after).toBe(before);
  });

  it('a damaged line in the middle makes the session damaged: never skipped, never cut', async () => {
    const text = await readFile(log, 'utf8');
    const lines = text.split('\n');
    lines[1] = lines[1]!.slice(0, 10);
    await writeFile(log, lines.join('\n'));
    const bytes = (await stat(log)).size;
    await restart();
    expectDamaged(await request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice));
    expectDamaged(await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'x' }));
    expectDamaged(await request(t.app).get(`/api/v1/sessions/${id}`).set(alice));
    expect((await stat(log)).size).toBe(bytes);
    const list = await request(t.app).get('/api/v1/sessions').set(alice).expect(200);
    expect(list.body.items[0]).toMatchObject({ id, damaged: true });
    expect(logLines().filter((l) => l.message === 'session damaged')).toEqual([
      expect.objectContaining({ userId: 'alice', sessionId: id, what: 'message log line 2' }),
    ]);
    await request(t.app).delete(`/api/v1/sessions/${id}`).set(alice).expect(204);
  });
});

describe('damage that is not a parse error stays contained too', () => {
  async function withFile(): Promise<string> {
    const id = await createSession('with a file');
    const up = multipart([filePart('a.txt', 'text/plain', 'hello')]);
    await request(t.app).post(`/api/v1/sessions/${id}/files`).set(alice).set('Content-Type', up.contentType).send(up.body).expect(201);
    return id;
  }

  const cases: Array<[string, (dir: string) => Promise<void>]> = [
    ['a FIFO where the session document belongs', async (dir) => {
      await unlink(path.join(dir, 'session.json'));
      execFileSync('mkfifo', [path.join(dir, 'session.json')]);
    }],
    ['a directory where the message log belongs', async (dir) => {
      await rm(path.join(dir, 'messages.jsonl'), { force: true });
      await mkdir(path.join(dir, 'messages.jsonl'));
    }],
    ['a regular file where the files directory belongs', async (dir) => {
      await rm(path.join(dir, 'files'), { recursive: true });
      await writeFile(path.join(dir, 'files'), 'x');
    }],
    ['a symbolic link where the files directory belongs', async (dir) => {
      await rm(path.join(dir, 'files'), { recursive: true });
      await symlink('/tmp', path.join(dir, 'files'));
    }],
    ['file bytes whose list was removed', async (dir) => {
      await rm(path.join(dir, 'files.jsonl'));
    }],
  ];

  it.each(cases)('%s: that session is damaged, the user\'s others and the listing work, and it can be deleted', async (_name, damage) => {
    const healthy = await createSession('healthy');
    const broken = await withFile();
    await appendMessages(broken, 'one');
    await damage(sessionDir(broken));
    await restart();
    const list = await request(t.app).get('/api/v1/sessions').set(alice).expect(200);
    expect(list.body.items).toEqual(expect.arrayContaining([expect.objectContaining({ id: broken, damaged: true })]));
    await request(t.app).get(`/api/v1/sessions/${healthy}`).set(alice).expect(200);
    await request(t.app).get('/api/v1/me').set(alice).expect(200);
    for (const pending of sessionRequests(broken)) {
      const res = await pending;
      expect(res.status).toBe(500);
      expect(res.body.type).toBe('/problems/session-damaged');
    }
    await request(t.app).delete(`/api/v1/sessions/${broken}`).set(alice).expect(204);
    await createSession('after');
  });

  it('file bytes whose list was removed are never deleted as leftovers', async () => {
    const id = await withFile();
    const [blob] = (await import('node:fs')).readdirSync(path.join(sessionDir(id), 'files'));
    await rm(path.join(sessionDir(id), 'files.jsonl'));
    await restart();
    await request(t.app).get('/api/v1/sessions').set(alice).expect(200);
    expect(await readFile(path.join(sessionDir(id), 'files', blob!), 'utf8')).toBe('hello');
  });

  it('a last log line that parses but holds the wrong message is damage, not a torn tail: never cut', async () => {
    const id = await createSession('chat');
    await appendMessages(id, 'one', 'two');
    const log = path.join(sessionDir(id), 'messages.jsonl');
    const lines = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
    const wrong = JSON.stringify({ ...JSON.parse(lines[1]!), seq: 7 });
    await writeFile(log, `${lines[0]}\n${wrong}\n`);
    const bytes = (await stat(log)).size;
    await restart();
    expectDamaged(await request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice));
    expect((await stat(log)).size).toBe(bytes);
  });
});

it('an acknowledged message as large as MAX_MESSAGE_BYTES allows is never taken for a torn tail', async () => {
  await t.close();
  const big = { MAX_JSON_BYTES: String(64 * 1024 * 1024), MAX_MESSAGE_BYTES: String(64 * 1024 * 1024), MAX_STATE_BYTES: '1024' };
  t = await startTestApp(big, { logger: logger() });
  alice = bearer(t.token('alice'));
  const id = await createSession('big');
  const content = 'b'.repeat(17 * 1024 * 1024);
  await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content }).expect(201);
  t = await restartTestApp(t, big, { logger: logger() });
  const res = await request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice).expect(200);
  expect(res.body.items.map((m: { content: string }) => m.content.length)).toEqual([content.length]);
  expect(logText).not.toMatch(/torn tail cut/);
});
