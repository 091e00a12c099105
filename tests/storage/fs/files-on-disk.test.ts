/**
 * What the fs backend leaves in the data directory, which no client can see but a disk fills
 * up with: a refused, raced or abandoned upload leaves no staged part in .staging and no blob
 * in the session's files/; a blob is named by the server's id, never by the client's file
 * name; deleting a file, a session or a user removes its bytes and directories; a restart
 * rebuilds usage from what is really on disk. The side a client sees (listings, usage, 404s)
 * runs on every backend in tests/http (files, files-quota, sessions, me, multipart-stall).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import request from 'supertest';
import { FILE_OVERHEAD_BYTES } from '../../../src/sessions/ports';
import { CLIENT_EXTENDED_FILE_NAMES, CLIENT_FILE_NAMES, REFUSED_BY_CONTENT } from '../../helpers/hostile-inputs';
import { beginUpload, closeServer, listen } from '../../helpers/loopback-server';
import { filePart, multipart, SAMPLES, type Multipart, type Part } from '../../helpers/multipart';
import { bearer, restartTestApp, startTestApp, type TestApp } from '../../helpers/test-app';
import { waitFor } from '../../helpers/wait-for';
import { startPropertyApp, type PropertyApp } from '../../property/support';

const QUOTA = 100_000;
let t: TestApp;
let server: http.Server;
let alice: { Authorization: string };

/** The app listening on a loopback port: an abandoned upload needs a socket of its own. */
async function start(env: Record<string, string>): Promise<void> {
  t = await startTestApp(env);
  server = await listen(t);
  alice = bearer(t.token('alice'));
}

async function stop(): Promise<void> {
  await closeServer(server);
  await t.close();
}

const staged = () => readdir(path.join(t.dataDir, '.staging'));
const sessionDir = (sessionId: string, userId = 'alice') => path.join(t.dataDir, 'sessions', userId, sessionId);
const filesDir = (sessionId: string) => path.join(sessionDir(sessionId), 'files');

/** The blobs stored for a session; none when the session never got a files directory. */
async function blobs(sessionId: string): Promise<string[]> {
  return readdir(filesDir(sessionId)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
}

async function newSession(who = alice): Promise<string> {
  return (await request(server).post('/api/v1/sessions').set(who).send({}).expect(201)).body.id as string;
}

function send(sessionId: string, body: Multipart) {
  return request(server).post(`/api/v1/sessions/${sessionId}/files`).set(alice).set('Content-Type', body.contentType).send(body.body);
}

const upload = (sessionId: string, parts: Part[]) => send(sessionId, multipart(parts));

async function me() {
  return (await request(server).get('/api/v1/me').set(alice).expect(200)).body.usage as { sessions: number; files: number; bytes: number };
}

async function files(sessionId: string): Promise<Array<{ id: string; size: number }>> {
  return (await request(server).get(`/api/v1/sessions/${sessionId}/files`).set(alice).expect(200)).body.items;
}

describe('a refused upload leaves nothing on disk', () => {
  beforeEach(() => start({ MAX_UPLOAD_BYTES: String(64 * 1024), MAX_FILES_PER_UPLOAD: '3' }));
  afterEach(stop);

  async function expectNothingOnDisk(sessionId: string): Promise<void> {
    expect(await staged()).toEqual([]);
    expect(await blobs(sessionId)).toEqual([]);
  }

  it.each(REFUSED_BY_CONTENT)('415 for %s: nothing staged, no blob', async (_name, type, data) => {
    const sessionId = await newSession();
    await upload(sessionId, [{ filename: 'evil.bin', contentType: type, data }]).expect(415);
    await expectNothingOnDisk(sessionId);
  });

  const rawPart = (headerLines: string): Multipart => ({
    contentType: 'multipart/form-data; boundary=xyz',
    body: Buffer.from(`--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n${headerLines}\r\n\r\nhello\r\n--xyz--\r\n`),
  });
  const whole = multipart([filePart('a.txt', 'text/plain', Buffer.alloc(5000, 'a'))]);
  const refused: Array<[string, number, Multipart]> = [
    ['a second part that is an executable', 415, multipart([filePart('good.csv', 'text/csv', SAMPLES.csv), filePart('bad.png', 'image/png', SAMPLES.elf)])],
    ['a part over MAX_UPLOAD_BYTES after an accepted part', 413, multipart([filePart('ok.txt', 'text/plain', Buffer.alloc(1000, 'a')), filePart('huge.txt', 'text/plain', Buffer.alloc(64 * 1024 + 1, 'b'))])],
    ['more parts than MAX_FILES_PER_UPLOAD', 413, multipart([1, 2, 3, 4].map((i) => filePart(`${i}.txt`, 'text/plain', `file ${i}`)))],
    ['a truncated body (no closing boundary)', 400, multipart([filePart('a.txt', 'text/plain', Buffer.alloc(5000, 'a'))], { truncate: true })],
    ['a part cut off in the middle of its bytes', 400, { contentType: whole.contentType, body: whole.body.subarray(0, 2000) }],
    ['a text field before a file', 400, multipart([{ field: 'note', data: 'hello' }, filePart('a.txt', 'text/plain', 'x')])],
    ['a file under another field name', 400, multipart([{ field: 'attachment', filename: 'a.txt', contentType: 'text/plain', data: 'x' }])],
    ['no file at all', 400, multipart([])],
    ['a part header block too large to be real', 400, rawPart(`X-Big: ${'b'.repeat(100_000)}`)],
    ['a raw NUL in the part header', 400, multipart([filePart('a\u0000b', 'text/plain', 'content')])],
  ];

  it.each(refused)('%s (%d): nothing staged, no blob', async (_name, status, body) => {
    const sessionId = await newSession();
    await send(sessionId, body).expect(status);
    await expectNothingOnDisk(sessionId);
  });

  it('an upload into a session that does not exist is answered before anything is staged', async () => {
    await upload('6f1c2b9a-4b1e-4a57-9d7a-2f0f5f1f0c11', [filePart('a.txt', 'text/plain', 'x')]).expect(404);
    expect(await staged()).toEqual([]);
  });
});

describe('a refused field, then a file part, then no closing boundary (found by tests/property/multipart)', () => {
  let p: PropertyApp;
  beforeEach(async () => {
    p = await startPropertyApp();
    t = p.t;
  });
  afterEach(() => p.close());

  it('leaves no staged temporary behind', async () => {
    const auth = p.auth('alice');
    const created = await p.send({ method: 'POST', path: '/api/v1/sessions', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{}' });
    const sessionId = (created.json as { id: string }).id;
    const body = multipart([{ data: 'a text field' }, { filename: 'x.txt', contentType: 'text/plain', data: 'hello' }], { truncate: true });
    // The property tests' raw client bounds the wait for an answer: this body once got none.
    const res = await p.send({ method: 'POST', path: `/api/v1/sessions/${sessionId}/files`, headers: { ...auth, 'Content-Type': body.contentType }, body: body.body });
    expect(res.status).toBe(400);
    expect(await staged()).toEqual([]);
  });
});

describe('blobs are named by the server', () => {
  beforeEach(() => start({}));
  afterEach(stop);

  type Name = Omit<Part, 'contentType' | 'data'>;
  const parts: Array<[string, Name]> = [
    ...CLIENT_FILE_NAMES.map(([raw]): [string, Name] => [JSON.stringify(raw), { filename: raw }]),
    ...CLIENT_EXTENDED_FILE_NAMES.map(([encoded]): [string, Name] => [`filename*=${encoded}`, { filename: 'fallback', filenameStar: encoded }]),
    ['a decomposed name', { filename: 're\u0301sume\u0301.txt' }],
    ['a 1,000-character name', { filename: `${'n'.repeat(996)}.csv` }],
    ['quotes, CR and LF in the extended name', { filename: 'x', filenameStar: 'a%22b%0D%0AX-Injected%3A%201%0D%0A.txt' }],
    ['an escaped quote', { filename: 'say \\"hi\\".txt' }],
  ];

  it.each(parts)('the blob of %s is named by its file id, whatever the client called it', async (_name, part) => {
    const sessionId = await newSession();
    const res = await upload(sessionId, [{ ...part, contentType: 'text/plain', data: 'content' }]).expect(201);
    expect(await blobs(sessionId)).toEqual([res.body.items[0].id]);
  });
});

describe('a delete takes its bytes and directories with it', () => {
  beforeEach(() => start({}));
  afterEach(stop);

  it('deleting a file removes its blob and only its', async () => {
    const sessionId = await newSession();
    const [a, b] = (await upload(sessionId, [filePart('a.csv', 'text/csv', SAMPLES.csv), filePart('b.png', 'image/png', SAMPLES.png)]).expect(201)).body.items;
    await request(server).delete(`/api/v1/sessions/${sessionId}/files/${a.id}`).set(alice).expect(204);
    expect(await blobs(sessionId)).toEqual([b.id]);
  });

  it('deleting a session removes its directory and leaves nothing staged', async () => {
    const sessionId = await newSession();
    await request(server).post(`/api/v1/sessions/${sessionId}/messages`).set(alice).send({ role: 'user', content: 'hi' }).expect(201);
    await upload(sessionId, [filePart('a.csv', 'text/csv', SAMPLES.csv)]).expect(201);
    await request(server).delete(`/api/v1/sessions/${sessionId}`).set(alice).expect(204);
    expect(await readdir(path.join(t.dataDir, 'sessions', 'alice'))).toEqual([]);
    expect(await staged()).toEqual([]);
  });

  it("DELETE /me removes the user's directory, files and all, and no one else's", async () => {
    const bob = bearer(t.token('bob'));
    for (let i = 0; i < 3; i++) await newSession();
    await upload(await newSession(), [filePart('a.csv', 'text/csv', SAMPLES.csv)]).expect(201);
    await newSession(bob);
    await request(server).delete('/api/v1/me').set(alice).expect(204);
    await expect(readdir(path.join(t.dataDir, 'sessions', 'alice'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(path.join(t.dataDir, 'sessions'))).toEqual(['bob']);
  });
});

describe('uploads against the quota', () => {
  beforeEach(() => start({ USER_QUOTA_BYTES: String(QUOTA), MAX_UPLOAD_BYTES: String(10 * 1024 * 1024), MAX_CONCURRENT_UPLOADS: '100' }));
  afterEach(stop);

  const text = (name: string, size: number, fill: string) => [filePart(name, 'text/plain', Buffer.alloc(size, fill))];

  it('a file that does not fit (507) leaves nothing staged and no blob', async () => {
    const sessionId = await newSession();
    const [first] = (await upload(sessionId, text('first.txt', 60_000, 'a')).expect(201)).body.items;
    await upload(sessionId, text('second.txt', 60_000, 'b')).expect(507);
    expect(await staged()).toEqual([]);
    expect(await blobs(sessionId)).toEqual([first.id]);
  });

  it('twenty concurrent uploads against a nearly full quota leave a blob for each accepted one and nothing staged', async () => {
    const sessionId = await newSession();
    await upload(sessionId, text('filler.txt', 80_000, 'f')).expect(201);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => upload(sessionId, text(`race-${i}.txt`, 3_000, String(i % 10)))));
    const accepted = results.filter((r) => r.status === 201).length;
    expect(accepted).toBeGreaterThan(0);
    expect(await blobs(sessionId)).toHaveLength(1 + accepted);
    expect(await staged()).toEqual([]);
  });

  it('a session deleted mid-upload leaves no directory and nothing staged', async () => {
    const sessionId = await newSession();
    const pending = upload(sessionId, text('late.txt', 40_000, 'l'));
    const deleted = request(server).delete(`/api/v1/sessions/${sessionId}`).set(alice);
    const [up, del] = await Promise.all([pending, deleted]);
    expect(del.status).toBe(204);
    expect([201, 404]).toContain(up.status);
    expect(await staged()).toEqual([]);
    await expect(readdir(sessionDir(sessionId))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an abandoned upload: its staged part is removed, no file list written, no usage left', async () => {
    const sessionId = await newSession();
    const before = await me();
    const req = beginUpload(server, alice, sessionId, Buffer.alloc(QUOTA - before.bytes, 'z'), 40_000);
    // Wait until the server is writing the part, then vanish.
    await waitFor(staged, (e) => e.length > 0, 'staged part');
    req.destroy();

    await waitFor(staged, (e) => e.length === 0, 'staging after abort');
    expect(await files(sessionId)).toEqual([]);
    expect(await me()).toEqual(before);
    expect(await readdir(sessionDir(sessionId))).not.toContain('files.json');

    // The reservation is gone too: a file filling the quota still fits.
    const room = QUOTA - before.bytes - FILE_OVERHEAD_BYTES;
    await upload(sessionId, text('fits.txt', room, 'f')).expect(201);
    expect((await me()).bytes).toBe(QUOTA);
  });

  it('a restart rebuilds usage from what is really stored: unnamed blobs and staged parts removed, vanished blobs dropped', async () => {
    const sessionId = await newSession();
    const [keep, vanish] = (
      await request(server)
        .post(`/api/v1/sessions/${sessionId}/files`)
        .set(alice)
        .attach('file', Buffer.alloc(10_000, 'k'), { filename: 'keep.txt', contentType: 'text/plain' })
        .attach('file', Buffer.alloc(20_000, 'v'), { filename: 'vanish.txt', contentType: 'text/plain' })
        .expect(201)
    ).body.items;
    const withBoth = await me();
    // A commit a crash interrupted: bytes renamed in, list never written.
    await writeFile(path.join(filesDir(sessionId), '0b7a3a2e-1111-4a4a-9b9b-123456789abc'), Buffer.alloc(30_000));
    // A part the process died receiving.
    await mkdir(path.join(t.dataDir, '.staging'), { recursive: true });
    await writeFile(path.join(t.dataDir, '.staging', 'dead-upload'), Buffer.alloc(30_000));
    // Bytes removed behind the service's back.
    await rm(path.join(filesDir(sessionId), vanish.id));

    await closeServer(server);
    t = await restartTestApp(t, { USER_QUOTA_BYTES: String(QUOTA), MAX_CONCURRENT_UPLOADS: '100' });
    server = await listen(t);

    expect(await staged()).toEqual([]);
    expect(await me()).toEqual({ sessions: 1, files: 1, bytes: withBoth.bytes - vanish.size - FILE_OVERHEAD_BYTES });
    expect(await files(sessionId)).toEqual([keep]);
    expect(await blobs(sessionId)).toEqual([keep.id]);
    // The rebuilt figure is what the quota is checked against.
    const room = QUOTA - (await me()).bytes - FILE_OVERHEAD_BYTES;
    await upload(sessionId, text('over.txt', room + 1, 'o')).expect(507);
    await upload(sessionId, text('exact.txt', room, 'e')).expect(201);
  });
});
