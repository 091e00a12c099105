/**
 * The real process on PostgreSQL + S3, killed with SIGKILL in the middle of a burst of
 * writes from several users, then started again on the same database and bucket. What an
 * operator and the users check afterwards:
 *
 * - every write that was acknowledged (a 2xx reached the client) is there: sessions with
 *   their title and state, PATCHes (the version is at least the last acknowledged one, and
 *   where the stored version is one that was acknowledged, its state), messages at the seq
 *   they were given with seq dense 1..n per session, files listed and downloadable with the
 *   same bytes;
 * - the upload reservations of the killed process (uploads half-sent, their requests still
 *   open at the kill, one of them with a multipart part already in S3) are swept once they
 *   expire, and the bytes they had put in S3 are deleted through the outbox;
 * - then per user: nothing is reserved, /me and the usage table agree with what is stored
 *   (each document and message as the service charges it, each file's size plus the
 *   per-file overhead), and the bucket holds exactly the objects of committed files (an
 *   incomplete multipart upload of the killed process is left to the bucket's lifecycle
 *   rule, as the README says; nothing else).
 */
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import jwt from 'jsonwebtoken';
import { filePart, multipart } from '../helpers/multipart';
import { createTestDatabase, queryOnce, type TestDatabase } from '../helpers/postgres';
import { eventually } from '../helpers/raw-upload';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver';
import { logLines, startServer, type ServerProcess } from '../helpers/server-process';
import { chargedBytes, everythingOf, type Everything, type FileRecord, type Json, type Message, type SessionDoc } from '../helpers/stored-data';
import { makeTempDir } from '../helpers/temp-dir';
import { TEST_SECRET } from '../helpers/test-app';

jest.setTimeout(180_000);

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = 'vault-crash';
const USERS = ['crash-alice', 'crash-bob', 'crash-carol'] as const;
/** Short, so the killed process's reservations expire within the test; config wants TTL*1000 >= 2*idle. */
const RESERVATION_TTL_S = 4;
const UPLOAD_IDLE_TIMEOUT_MS = 2000;
const PART_SIZE = 5 * MiB;

let database: TestDatabase | undefined;
let s3: S3rverHandle | undefined;
let dataDir: string | undefined;
const servers: ServerProcess[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.allSettled(servers.splice(0).map((s) => s.stop()));
  await Promise.allSettled([database?.drop(), s3?.stop()]);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  database = undefined;
  s3 = undefined;
  dataDir = undefined;
});

const tokens = new Map(USERS.map((u) => [u, jwt.sign({ sub: u }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 })]));
const authOf = (user: string) => ({ Authorization: `Bearer ${tokens.get(user as (typeof USERS)[number])!}` });
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A PNG by its signature, `bytes` long, random otherwise. */
function png(bytes: number): Buffer {
  const data = randomBytes(bytes);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(data);
  return data;
}

function adminQuery<T extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
  return queryOnce<T>(database!.adminUrl, text, values);
}

/** What the clients were told: only answers with a 2xx and a whole body count. */
interface Acknowledged {
  sessions: Map<string, { user: string; title: string; state: Record<string, Json> }>;
  /** Per session, version -> the state that version was acknowledged with. */
  patches: Map<string, Map<number, Record<string, Json>>>;
  messages: Array<{ user: string; sessionId: string; message: Message }>;
  files: Array<{ user: string; sessionId: string; record: FileRecord; data: Buffer }>;
}

/**
 * Headers and most of a one-file upload on a raw socket, then a trickle of the rest (a
 * kibibyte every 250 ms, never all of it), so that at the kill the request is open and alive.
 */
function halfSentUpload(server: ServerProcess, user: string, sessionId: string, fileBytes: number, sendFirst: number): void {
  const body = multipart([filePart(`half-sent-${fileBytes}.png`, 'image/png', png(fileBytes))]);
  const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  socket.write(
    `POST /api/v1/sessions/${sessionId}/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${authOf(user).Authorization}\r\n` +
      `Content-Type: ${body.contentType}\r\nContent-Length: ${body.body.length}\r\n\r\n`,
  );
  let sent = Math.min(sendFirst, body.body.length - 64 * KiB);
  socket.write(body.body.subarray(0, sent));
  const trickle = setInterval(() => {
    if (socket.destroyed || sent + KiB >= body.body.length - KiB) return;
    socket.write(body.body.subarray(sent, sent + KiB));
    sent += KiB;
  }, 250);
  socket.once('close', () => clearInterval(trickle));
}

async function post(server: ServerProcess, user: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { ...authOf(user), 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** The burst: per user, a creator, two appenders, a patcher and an uploader, until `stopped()`. */
function burst(server: ServerProcess, seeds: Map<string, string[]>, acked: Acknowledged, stopped: () => boolean): Array<Promise<void>> {
  const api = `${server.url}/api/v1`;
  // A request the kill cut off (or whose body did not arrive whole) is simply not acknowledged.
  const loop = async (work: (i: number) => Promise<void>) => {
    for (let i = 0; !stopped(); i++) {
      try {
        await work(i);
      } catch {
        return;
      }
    }
  };
  const workers: Array<Promise<void>> = [];
  for (const user of USERS) {
    const mine = seeds.get(user)!;
    workers.push(
      loop(async (i) => {
        const title = `${user} burst ${i}`;
        const state = { made: i, pad: 'c'.repeat(200 + i) };
        const res = await post(server, user, '/api/v1/sessions', { title, state });
        if (res.status === 201) acked.sessions.set(((await res.json()) as SessionDoc).id, { user, title, state });
      }),
    );
    for (const w of [0, 1]) {
      workers.push(
        loop(async (i) => {
          const sessionId = mine[(i + w) % mine.length]!;
          const res = await post(server, user, `/api/v1/sessions/${sessionId}/messages`, {
            role: i % 3 === 0 ? 'assistant' : 'user',
            content: `${user} w${w} #${i} ${'m'.repeat(i % 50)}`,
            metadata: { w, i },
          });
          if (res.status === 201) acked.messages.push({ user, sessionId, message: (await res.json()) as Message });
        }),
      );
    }
    workers.push(
      loop(async (i) => {
        const sessionId = mine[i % mine.length]!;
        const state = { patched: i, by: user, pad: 'p'.repeat(100 + 37 * i) };
        const res = await fetch(`${api}/sessions/${sessionId}`, {
          method: 'PATCH',
          headers: { ...authOf(user), 'Content-Type': 'application/json' },
          body: JSON.stringify({ state }),
        });
        if (res.status === 200) {
          const doc = (await res.json()) as SessionDoc;
          const versions = acked.patches.get(sessionId) ?? new Map<number, Record<string, Json>>();
          versions.set(doc.version, state);
          acked.patches.set(sessionId, versions);
        }
      }),
    );
    workers.push(
      loop(async (i) => {
        const sessionId = mine[i % mine.length]!;
        const parts = Array.from({ length: 1 + (i % 2) }, (_, p) => png((150 + ((i * 7 + p * 13) % 250)) * KiB));
        const form = new FormData();
        parts.forEach((data, p) => form.append('file', new Blob([data], { type: 'image/png' }), `burst-${i}-${p}.png`));
        const res = await fetch(`${api}/sessions/${sessionId}/files`, { method: 'POST', headers: authOf(user), body: form });
        if (res.status === 201) {
          const { items } = (await res.json()) as { items: FileRecord[] };
          items.forEach((record, p) => acked.files.push({ user, sessionId, record, data: parts[p]! }));
        }
      }),
    );
  }
  return workers;
}

async function getJson<T>(server: ServerProcess, user: string, path: string): Promise<T> {
  const res = await fetch(`${server.url}${path}`, { headers: authOf(user) });
  if (res.status !== 200) throw new Error(`GET ${path} as ${user}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}


it('loses no acknowledged write when killed with SIGKILL mid-burst; the dead process’s reservations are swept and usage and the bucket add up', async () => {
  dataDir = await makeTempDir();
  database = await createTestDatabase();
  s3 = await startS3rver();
  const settings = s3.settings(BUCKET);
  const env = {
    STORAGE_BACKEND: 'postgres',
    DATA_DIR: dataDir,
    JWT_SECRET: TEST_SECRET,
    DATABASE_URL: database.databaseUrl,
    DATABASE_MIGRATION_URL: database.migrationUrl,
    DATABASE_POOL_MAX: '10',
    BLOB_STORE: 's3',
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: settings.bucket,
    S3_REGION: settings.region,
    S3_ACCESS_KEY_ID: settings.accessKeyId!,
    S3_SECRET_ACCESS_KEY: settings.secretAccessKey!,
    S3_FORCE_PATH_STYLE: 'true',
    S3_PART_SIZE: String(PART_SIZE),
    UPLOAD_RESERVATION_TTL_S: String(RESERVATION_TTL_S),
    UPLOAD_IDLE_TIMEOUT_MS: String(UPLOAD_IDLE_TIMEOUT_MS),
    RATE_LIMIT_MAX: '1000000',
    RATE_LIMIT_IP_MAX: '1000000',
  };
  const first = await startServer(env);
  servers.push(first);

  // Two sessions per user before the burst, for the appenders, the patcher and the uploader.
  const seeds = new Map<string, string[]>();
  const acked: Acknowledged = { sessions: new Map(), patches: new Map(), messages: [], files: [] };
  for (const user of USERS) {
    const ids: string[] = [];
    for (const n of [1, 2]) {
      const res = await post(first, user, '/api/v1/sessions', { title: `${user} seed ${n}`, state: { seed: n } });
      expect(res.status).toBe(201);
      const doc = (await res.json()) as SessionDoc;
      acked.sessions.set(doc.id, { user, title: doc.title, state: doc.state });
      ids.push(doc.id);
    }
    seeds.set(user, ids);
  }

  // One upload per user left half-sent; carol's is past one part, so S3 holds a multipart upload of it.
  halfSentUpload(first, 'crash-alice', seeds.get('crash-alice')![0]!, 400 * KiB, 200 * KiB);
  halfSentUpload(first, 'crash-bob', seeds.get('crash-bob')![1]!, 300 * KiB, 100 * KiB);
  halfSentUpload(first, 'crash-carol', seeds.get('crash-carol')![0]!, 6 * MiB, PART_SIZE + 512 * KiB);
  await eventually(
    async () => (await adminQuery('SELECT 1 FROM upload_reservations WHERE files = 1')).length === 3,
    'the half-sent uploads to hold their reservations',
    20_000,
  );
  await eventually(
    async () => s3!.requests.some((r) => r.method === 'PUT' && r.url.searchParams.has('partNumber')),
    'the large half-sent upload to send a part',
    20_000,
  );

  // The burst, killed once every kind of write has been acknowledged a few times.
  let killed = false;
  const burstStarted = Date.now();
  const workers = burst(first, seeds, acked, () => killed);
  await eventually(
    async () =>
      Date.now() - burstStarted > 20_000 ||
      (acked.messages.length >= 30 && acked.files.length >= 4 && acked.patches.size >= 3 && acked.sessions.size >= 6 + 3),
    'the burst to get going',
    30_000,
  );
  first.proc.kill('SIGKILL');
  expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
  killed = true;
  await Promise.all(workers);
  for (const socket of sockets.splice(0)) socket.destroy();
  expect(acked.messages.length).toBeGreaterThan(0);
  expect(acked.files.length).toBeGreaterThan(0);
  expect(acked.patches.size).toBeGreaterThan(0);

  // What the dead process left: its reservations, and whatever their uploads had put in S3.
  const orphaned = await adminQuery<{ id: string; user_id: string; file_ids: string[] }>(
    'SELECT id::text, user_id, file_ids::text[] FROM upload_reservations',
  );
  expect(orphaned.length).toBeGreaterThanOrEqual(3);
  const bucketAtKill = await s3.contents(BUCKET);
  expect(bucketAtKill.filter((line) => line.startsWith('upload '))).not.toEqual([]);

  const second = await startServer(env);
  servers.push(second);
  expect((await fetch(`${second.url}/readyz`)).status).toBe(200);

  // 1. Every acknowledged write is there.
  const stored = new Map<string, Everything>(
    await Promise.all(USERS.map(async (user) => [user, await everythingOf(<T,>(p: string) => getJson<T>(second, user, p))] as const)),
  );
  const storedSession = (user: string, id: string) => stored.get(user)!.get(id);
  for (const [id, { user, title, state }] of acked.sessions) {
    const session = storedSession(user, id);
    expect({ id, title: session?.doc.title }).toEqual({ id, title });
    if (!acked.patches.has(id)) expect({ id, version: session?.doc.version, state: session?.doc.state }).toEqual({ id, version: 1, state });
  }
  for (const [id, versions] of acked.patches) {
    const user = acked.sessions.get(id)!.user;
    const doc = storedSession(user, id)!.doc;
    expect(doc.version).toBeGreaterThanOrEqual(Math.max(...versions.keys()));
    // The stored version may be a PATCH whose answer the kill cut off; if it was acknowledged, its state.
    if (versions.has(doc.version)) expect(doc.state).toEqual(versions.get(doc.version));
  }
  for (const [user, sessions] of stored) {
    for (const [id, { messages }] of sessions) {
      expect({ user, id, seqs: messages.map((m) => m.seq) }).toEqual({ user, id, seqs: messages.map((_, i) => i + 1) });
    }
  }
  for (const { user, sessionId, message } of acked.messages) {
    expect(storedSession(user, sessionId)!.messages[message.seq - 1]).toEqual(message);
  }
  for (const { user, sessionId, record, data } of acked.files) {
    expect(storedSession(user, sessionId)!.files.find((f) => f.id === record.id)).toEqual(record);
    expect(record.sha256).toBe(sha256(data));
    const download = await fetch(`${second.url}/api/v1/sessions/${sessionId}/files/${record.id}`, { headers: authOf(user) });
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(data)).toBe(true);
  }
  // No half-sent upload became a file.
  for (const sessions of stored.values()) {
    for (const { files } of sessions.values()) expect(files.filter((f) => f.name.startsWith('half-sent'))).toEqual([]);
  }

  // 2. The dead process's reservations are swept once expired, and the outbox deletes their bytes.
  const orphanIds = orphaned.map((r) => r.id);
  await eventually(
    async () => (await adminQuery('SELECT 1 FROM upload_reservations WHERE id = ANY($1::uuid[])', [orphanIds])).length === 0,
    'the killed process’s reservations to be swept',
    30_000,
  );
  await eventually(
    async () => logLines(second.stdout()).some((l) => l.message === 'expired upload reservations swept' && l.category === 'recovery'),
    'the sweep to be logged',
  );
  await eventually(async () => (await adminQuery('SELECT 1 FROM blob_outbox')).length === 0, 'the outbox to drain', 30_000);
  expect(await adminQuery('SELECT id FROM upload_reservations')).toEqual([]);
  const recorded = new Set((await adminQuery<{ id: string }>('SELECT id::text FROM files')).map((f) => f.id));
  for (const { file_ids: fileIds } of orphaned) for (const fileId of fileIds) expect(recorded.has(fileId)).toBe(false);

  // 3. Usage adds up, per user, both as /me reports it and in the usage table.
  for (const user of USERS) {
    const sessions = stored.get(user)!;
    const me = await getJson<{ usage: { sessions: number; files: number; bytes: number }; limits: { fileOverheadBytes: number } }>(
      second,
      user,
      '/api/v1/me',
    );
    const files = [...sessions.values()].reduce((n, s) => n + s.files.length, 0);
    const expected = { sessions: sessions.size, files, bytes: chargedBytes(sessions, me.limits.fileOverheadBytes) };
    expect({ user, usage: me.usage }).toEqual({ user, usage: expected });
    const [row] = await adminQuery<{ sessions: number; files: number; bytes: number; reserved: number }>(
      'SELECT sessions, files, bytes::int, reserved::int FROM usage WHERE user_id = $1',
      [user],
    );
    const [sums] = await adminQuery<{ bytes: number; file_bytes: number; file_count: number }>(
      `SELECT coalesce(sum(doc_bytes + log_bytes + file_bytes), 0)::int AS bytes,
              coalesce(sum(file_bytes), 0)::int AS file_bytes, coalesce(sum(file_count), 0)::int AS file_count
       FROM sessions WHERE user_id = $1`,
      [user],
    );
    const [fileRows] = await adminQuery<{ charged: number; count: number }>(
      'SELECT coalesce(sum(size + $2), 0)::int AS charged, count(*)::int AS count FROM files WHERE user_id = $1',
      [user, me.limits.fileOverheadBytes],
    );
    expect({ user, row, sums }).toEqual({
      user,
      row: { ...expected, reserved: 0 },
      sums: { bytes: expected.bytes, file_bytes: fileRows!.charged, file_count: fileRows!.count },
    });
  }

  // 4. The bucket holds exactly the objects of committed files. An incomplete multipart upload
  //    may stay only where the killed process had one in flight: nothing deletes those but
  //    the bucket's lifecycle rule (README, "The bucket").
  const contents = await s3.contents(BUCKET);
  const inFlightAtKill = new Set(orphaned.flatMap((r) => r.file_ids.map((id) => `upload files/${id}`)));
  expect({
    objects: contents.filter((line) => line.startsWith('object ')),
    otherUnfinishedMultipartUploads: contents.filter((line) => line.startsWith('upload ') && !inFlightAtKill.has(line)),
  }).toEqual({
    objects: [...recorded].map((id) => `object files/${id}`).sort(),
    otherUnfinishedMultipartUploads: [],
  });

  // 5. The restarted process goes on where the acknowledged history ends.
  const [user, sessionId] = ['crash-alice', seeds.get('crash-alice')![0]!];
  const next = await post(second, user, `/api/v1/sessions/${sessionId}/messages`, { role: 'user', content: 'after the crash' });
  expect(next.status).toBe(201);
  expect(((await next.json()) as Message).seq).toBe(storedSession(user, sessionId)!.messages.length + 1);
});
