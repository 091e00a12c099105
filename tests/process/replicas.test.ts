/**
 * N replicas behave as one service: three real processes (`dist/server.js`) on one fresh
 * database, one s3rver and the machine's Redis, started at the same time, reached
 * round-robin through the real nginx running deploy/nginx.conf (its upstream pointed at the
 * three, nothing else changed), TRUST_PROXY=1.
 *
 * - Startup: the migrations race; every replica gets ready and each migration is applied
 *   once. nginx spreads sequential requests evenly (each replica's request log has its share).
 * - 50 concurrent clients as one user through nginx: appends get seq 1..50, each once; of
 *   50 PATCHes with the same If-Match exactly one wins and 49 are 412; concurrent uploads
 *   against a small quota never exceed it and /me adds up to what is stored.
 * - A session created on one replica is listed, read, changed and deleted through the
 *   others (addressed directly), and cursors and ETags carry across.
 * - The cross-tenant matrix through nginx, repeated until every route has reached every
 *   replica: another user's session, messages and files are 404 exactly like missing ones,
 *   and nothing of the owner's changes.
 * - On a set of its own (UPLOAD_RESERVATION_TTL_S=4, UPLOAD_IDLE_TIMEOUT_MS=2000): kill -9 of
 *   one replica during a burst of writes through nginx: reads keep working and both survivors
 *   answer, a failed write is only a 502 of the dead replica, no acknowledged write is lost
 *   (each checked through the survivors), and the dead replica's upload reservations (uploads
 *   half-sent to it) are swept by the others; usage, the usage table and the bucket add up.
 * - On a third set with RATE_LIMIT_MAX=30 and RATE_LIMIT_IP_MAX=30: both limits count across
 *   the replicas (one user's 31st request, one client address's 31st request is a 429
 *   whichever replica answers; the address is the one nginx saw, not a spoofed one).
 *
 * Three sets because their settings exclude each other: the first needs far more than 30
 * requests per user; the short upload idle timeout the crash set needs would cut off the
 * first set's 50 concurrent uploads (the idle timer, the socket's, also runs while the
 * server itself is busy; see src/http/routes/files.ts).
 *
 * Every scenario uses users of its own (random prefix) and a client address of its own
 * (a random 127.x.y.z source address), so no scenario shares data or a rate-limit counter
 * with another, nor with other test files; afterAll removes the Redis keys it made.
 * Needs nginx (/usr/sbin/nginx; CI installs nginx-light): fails, never skips, without it.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import jwt from 'jsonwebtoken';
import { createClient } from 'redis';
import { migrationFiles } from '../../src/storage/postgres/migrate';
import { filePart, multipart } from '../helpers/multipart';
import { createTestDatabase, queryOnce, type TestDatabase } from '../helpers/postgres';
import { eventually } from '../helpers/raw-upload';
import { closeAgents, randomLoopback, requireNginx, send, startReplicaSet, whoServed, type Reply, type ReplicaSet, type SendOptions } from '../helpers/replicas';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver';
import { chargedBytes, everythingOf, type FileRecord, type Message, type SessionDoc } from '../helpers/stored-data';
import { logLines } from '../helpers/server-process';
import { makeTempDir } from '../helpers/temp-dir';
import { TEST_SECRET } from '../helpers/test-app';

jest.setTimeout(120_000);

const KiB = 1024;
const BUCKET = 'vault-replicas';
const REDIS_URL = 'redis://127.0.0.1:6379';
const QUOTA = 1024 * KiB;
/** Short, so a killed replica's reservations expire within the test; config wants TTL*1000 >= 2*idle. */
const RESERVATION_TTL_S = 4;
const UPLOAD_IDLE_TIMEOUT_MS = 2000;

/** Every user of this run starts with it: the Redis keys of this run are found by it. */
const PREFIX = `rep-${randomBytes(4).toString('hex')}-`;
/** Client addresses this run used: their per-IP counters are removed afterwards. */
const sources = new Set<string>();

const freshUser = (name: string) => `${PREFIX}${name}-${randomBytes(3).toString('hex')}`;
const freshSource = () => {
  const address = randomLoopback();
  sources.add(address);
  return address;
};
const authOf = (user: string) => ({ Authorization: `Bearer ${jwt.sign({ sub: user }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 })}` });
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const countBy = <T>(values: T[]) => values.reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map<T, number>());

/** A PNG by its signature, `bytes` long, random otherwise. */
function png(bytes: number): Buffer {
  const data = randomBytes(bytes);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(data);
  return data;
}

let workDir: string | undefined;
let database: TestDatabase | undefined;
let s3: S3rverHandle | undefined;
const redis = createClient({ url: REDIS_URL });
const sets: ReplicaSet[] = [];
const sockets: Socket[] = [];

function adminQuery<T extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
  return queryOnce<T>(database!.adminUrl, text, values);
}

function serviceEnv(): Record<string, string> {
  // A failed file setup (nginx missing, no PostgreSQL) has said why already; say no more here.
  requireNginx();
  if (!database || !s3) throw new Error('the shared setup (database, s3rver) did not complete: see the first error');
  const settings = s3.settings(BUCKET);
  return {
    JWT_SECRET: TEST_SECRET,
    STORAGE_BACKEND: 'postgres',
    DATABASE_URL: database.databaseUrl,
    DATABASE_MIGRATION_URL: database.migrationUrl,
    DATABASE_POOL_MAX: '8',
    BLOB_STORE: 's3',
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: settings.bucket,
    S3_REGION: settings.region,
    S3_ACCESS_KEY_ID: settings.accessKeyId!,
    S3_SECRET_ACCESS_KEY: settings.secretAccessKey!,
    S3_FORCE_PATH_STYLE: 'true',
    RATE_LIMIT_STORE: 'redis',
    REDIS_URL,
    TRUST_PROXY: '1',
  };
}

beforeAll(async () => {
  requireNginx();
  workDir = await makeTempDir('session-vault-replicas-');
  database = await createTestDatabase();
  s3 = await startS3rver();
  await redis.connect();
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.allSettled(sets.splice(0).map((set) => set.stop()));
  closeAgents();
  await Promise.allSettled([database?.drop(), s3?.stop()]);
  if (redis.isOpen) {
    const keys = [...sources].map((address) => `sv:rl:ip:${address}`);
    for await (const batch of redis.scanIterator({ MATCH: `sv:rl:user:user:${PREFIX}*`, COUNT: 1000 })) keys.push(...batch);
    if (keys.length > 0) await redis.del(keys);
    redis.destroy();
  }
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** A client of the service: one user, one source address, one base URL (nginx or a replica). */
function clientOf(base: string, user: string, from = freshSource()) {
  const auth = authOf(user);
  const call = (method: string, path: string, options: Omit<SendOptions, 'from'> = {}) =>
    send(`${base}${path}`, { method, from, ...options, headers: { ...auth, ...options.headers } });
  const getJson = async <T>(path: string): Promise<T> => {
    const res = await call('GET', path);
    if (res.status !== 200) throw new Error(`GET ${path} as ${user}: ${res.status} ${res.text()}`);
    return res.json<T>();
  };
  const upload = (sessionId: string, files: Array<{ name: string; type: string; data: Buffer }>) => {
    const body = multipart(files.map((f) => filePart(f.name, f.type, f.data)));
    return call('POST', `/api/v1/sessions/${sessionId}/files`, { headers: { 'Content-Type': body.contentType }, body: body.body });
  };
  return { user, from, auth, call, getJson, upload };
}

describe('three replicas behind deploy/nginx.conf, as one service', () => {
  let set: ReplicaSet;
  const front = () => set.front.url;

  beforeAll(async () => {
    set = await startReplicaSet(
      3,
      {
        ...serviceEnv(),
        // Many requests per user and per address here; the limits are proven on a set of their own below.
        RATE_LIMIT_MAX: '1000000',
        RATE_LIMIT_IP_MAX: '1000000',
        USER_QUOTA_BYTES: String(QUOTA),
        MAX_CONCURRENT_UPLOADS: '64',
        // The default upload idle timeout (30 s) here: with 2 s, uploads of one user queued on
        // the user's usage row are cut off by the server itself (its idle timer is the
        // socket's, so it also runs while the server waits for the database).
      },
      `${workDir!}/main`,
    );
    sets.push(set);
  });
  afterAll(async () => {
    await set?.stop();
  });

  it('starts all three at once on a fresh database: each is ready, each migration applied once', async () => {
    for (const replica of set.replicas) {
      await eventually(async () => (await fetch(`${replica.url}/readyz`)).status === 200, `${replica.url} to be ready`);
    }
    const files = migrationFiles();
    const migrated = set.replicas.map((r) => logLines(r.stdout()).find((l) => l.message === 'database migrations'));
    for (const line of migrated) expect(line).toMatchObject({ owner: database!.ownerRole });
    // Whoever won the lock applied everything; the others found nothing left.
    expect(migrated.flatMap((l) => l!.applied as string[]).sort()).toEqual(files.map((m) => m.name));
    expect(await adminQuery('SELECT version, name FROM schema_migrations ORDER BY version')).toEqual(
      files.map(({ version, name }) => ({ version, name })),
    );
  });

  it('spreads sequential requests round-robin over the three (each replica logs its third, with the client address nginx saw)', async () => {
    const c = clientOf(front(), freshUser('spread'));
    const replies: Reply[] = [];
    for (let i = 0; i < 30; i++) replies.push(await c.call('GET', '/api/v1/me', { headers: { 'X-Forwarded-For': '6.6.6.6' } }));
    expect(replies.map((r) => r.status)).toEqual(Array(30).fill(200));
    const served = await whoServed(set.logs, replies.map((r) => r.requestId));
    expect([...countBy(served.map((s) => s.replica)).entries()].sort()).toEqual([
      [0, 10],
      [1, 10],
      [2, 10],
    ]);
    for (const { line } of served) expect(line).toMatchObject({ route: '/api/v1/me', status: 200, userId: c.user, ip: c.from });
  });

  it('50 concurrent appends through nginx get seq 1..50, each once', async () => {
    const c = clientOf(front(), freshUser('seq'));
    const created = await c.call('POST', '/api/v1/sessions', { json: { title: 'appends' } });
    expect(created.status).toBe(201);
    const sessionId = created.json<SessionDoc>().id;
    const replies = await Promise.all(
      range(1, 50).map((i) => c.call('POST', `/api/v1/sessions/${sessionId}/messages`, { json: { role: 'user', content: `client ${i}`, metadata: { i } } })),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(50).fill(201));
    const acked = replies.map((r) => r.json<Message>());
    expect(acked.map((m) => m.seq).sort((a, b) => a - b)).toEqual(range(1, 50));
    const stored = await c.getJson<{ items: Message[]; nextCursor: number | null }>(`/api/v1/sessions/${sessionId}/messages?limit=200`);
    expect(stored.items.map((m) => m.seq)).toEqual(range(1, 50));
    for (const m of acked) expect(stored.items[m.seq - 1]).toEqual(m);
    const served = await whoServed(set.logs, replies.map((r) => r.requestId));
    expect(new Set(served.map((s) => s.replica))).toEqual(new Set([0, 1, 2]));
  });

  it('of 50 concurrent PATCHes with the same If-Match through nginx, exactly one wins and 49 are 412', async () => {
    const c = clientOf(front(), freshUser('ifmatch'));
    const created = await c.call('POST', '/api/v1/sessions', { json: { title: 'contended', state: { n: 0 } } });
    expect(created.status).toBe(201);
    expect(created.headers.etag).toBe('"v1"');
    const sessionId = created.json<SessionDoc>().id;
    const replies = await Promise.all(
      range(1, 50).map((i) => c.call('PATCH', `/api/v1/sessions/${sessionId}`, { headers: { 'If-Match': '"v1"' }, json: { state: { winner: i } } })),
    );
    const statuses = countBy(replies.map((r) => r.status));
    expect(Object.fromEntries(statuses)).toEqual({ 200: 1, 412: 49 });
    const winner = replies.find((r) => r.status === 200)!.json<SessionDoc>();
    expect(winner.version).toBe(2);
    const stored = await c.getJson<SessionDoc>(`/api/v1/sessions/${sessionId}`);
    expect(stored).toEqual(winner);
    const served = await whoServed(set.logs, replies.map((r) => r.requestId));
    expect(new Set(served.map((s) => s.replica))).toEqual(new Set([0, 1, 2]));
    expect(new Set(served.filter((s) => s.line.status === 412).map((s) => s.replica)).size).toBeGreaterThanOrEqual(2);
  });

  it('50 concurrent uploads through nginx never take a user past the quota; /me equals what is stored', async () => {
    const c = clientOf(front(), freshUser('quota'));
    const created = await c.call('POST', '/api/v1/sessions', { json: { title: 'uploads' } });
    expect(created.status).toBe(201);
    const sessionId = created.json<SessionDoc>().id;
    const payloads = range(1, 50).map(() => png(64 * KiB));
    const replies = await Promise.all(payloads.map((data, i) => c.upload(sessionId, [{ name: `up-${i}.png`, type: 'image/png', data }])));
    const statuses = countBy(replies.map((r) => r.status));
    expect([...statuses.keys()].sort()).toEqual([201, 507]);
    for (const r of replies.filter((r) => r.status === 507)) expect(r.json()).toMatchObject({ limit: 'USER_QUOTA_BYTES' });
    const acked = replies.flatMap((r, i) => (r.status === 201 ? [{ record: r.json<{ items: FileRecord[] }>().items[0]!, data: payloads[i]! }] : []));

    const stored = await everythingOf(c.getJson);
    const me = await c.getJson<{ usage: { sessions: number; files: number; bytes: number }; limits: { bytes: number; fileOverheadBytes: number } }>('/api/v1/me');
    expect(me.limits.bytes).toBe(QUOTA);
    const files = stored.get(sessionId)!.files;
    expect(files.map((f) => f.id).sort()).toEqual(acked.map((a) => a.record.id).sort());
    expect(me.usage).toEqual({ sessions: 1, files: acked.length, bytes: chargedBytes(stored, me.limits.fileOverheadBytes) });
    expect(me.usage.bytes).toBeLessThanOrEqual(QUOTA);
    // Refused uploads give their reservations back: nothing stays reserved, and the table agrees.
    await eventually(
      async () => (await adminQuery('SELECT 1 FROM usage WHERE user_id = $1 AND reserved = 0', [c.user])).length === 1,
      'the refused uploads to give their reservations back',
    );
    expect(await adminQuery('SELECT bytes::int, files FROM usage WHERE user_id = $1', [c.user])).toEqual([{ bytes: me.usage.bytes, files: acked.length }]);
    for (const { record, data } of acked) {
      expect(record.sha256).toBe(sha256(data));
      const download = await c.call('GET', `/api/v1/sessions/${sessionId}/files/${record.id}`);
      expect(download.status).toBe(200);
      expect(download.body.equals(data)).toBe(true);
    }
    const served = await whoServed(set.logs, replies.map((r) => r.requestId));
    expect(new Set(served.map((s) => s.replica))).toEqual(new Set([0, 1, 2]));
  });

  it('a session made on one replica is listed, read, changed and deleted through the others', async () => {
    const user = freshUser('across');
    const from = freshSource();
    const [a, b, c] = set.replicas.map((r) => clientOf(r.url, user, from)) as [ReturnType<typeof clientOf>, ReturnType<typeof clientOf>, ReturnType<typeof clientOf>];

    const created = await a.call('POST', '/api/v1/sessions', { json: { title: 'made on a', state: { step: 1 } } });
    expect(created.status).toBe(201);
    const doc = created.json<SessionDoc>();
    expect((await b.getJson<{ items: Array<{ id: string }> }>('/api/v1/sessions')).items.map((s) => s.id)).toEqual([doc.id]);
    const read = await c.call('GET', `/api/v1/sessions/${doc.id}`);
    expect({ status: read.status, etag: read.headers.etag, body: read.json() }).toEqual({ status: 200, etag: '"v1"', body: doc });
    expect((await a.call('GET', `/api/v1/sessions/${doc.id}`, { headers: { 'If-None-Match': '"v1"' } })).status).toBe(304);

    const patched = await b.call('PATCH', `/api/v1/sessions/${doc.id}`, { headers: { 'If-Match': '"v1"' }, json: { state: { step: 2 } } });
    expect(patched.status).toBe(200);
    expect(patched.json<SessionDoc>()).toMatchObject({ version: 2, state: { step: 2 } });
    // The version b made is the one c checks against.
    expect((await c.call('PATCH', `/api/v1/sessions/${doc.id}`, { headers: { 'If-Match': '"v1"' }, json: { state: { step: 'stale' } } })).status).toBe(412);
    expect(await a.getJson(`/api/v1/sessions/${doc.id}`)).toEqual(patched.json());

    const first = await c.call('POST', `/api/v1/sessions/${doc.id}/messages`, { json: { role: 'user', content: 'via c' } });
    const second = await a.call('POST', `/api/v1/sessions/${doc.id}/messages`, { json: { role: 'assistant', content: 'via a' } });
    expect([first.status, second.status]).toEqual([201, 201]);
    expect((await b.getJson<{ items: Message[] }>(`/api/v1/sessions/${doc.id}/messages`)).items).toEqual([first.json(), second.json()]);

    const data = Buffer.from('city,days\nLisbon,4\n');
    const uploaded = await a.upload(doc.id, [{ name: 'plan.csv', type: 'text/csv', data }]);
    expect(uploaded.status).toBe(201);
    const file = uploaded.json<{ items: FileRecord[] }>().items[0]!;
    expect((await b.getJson<{ items: FileRecord[] }>(`/api/v1/sessions/${doc.id}/files`)).items).toEqual([file]);
    const download = await c.call('GET', `/api/v1/sessions/${doc.id}/files/${file.id}`);
    expect({ status: download.status, same: download.body.equals(data) }).toEqual({ status: 200, same: true });

    // A cursor one replica signed pages on the others (the key is in the database).
    for (const title of ['second', 'third']) expect((await c.call('POST', '/api/v1/sessions', { json: { title } })).status).toBe(201);
    const pages: string[][] = [];
    let cursor: string | null = null;
    for (const replica of [a, b, c]) {
      const page: { items: Array<{ id: string }>; nextCursor: string | null } = await replica.getJson(
        `/api/v1/sessions?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      pages.push(page.items.map((s) => s.id));
      cursor = page.nextCursor;
    }
    expect(cursor).toBeNull();
    expect(new Set(pages.flat()).size).toBe(3);
    expect(pages.flat()).toContain(doc.id);
    const usages = await Promise.all([a, b, c].map((r) => r.getJson<{ usage: unknown }>('/api/v1/me')));
    expect(usages[1]!.usage).toEqual(usages[0]!.usage);
    expect(usages[2]!.usage).toEqual(usages[0]!.usage);

    expect((await c.call('DELETE', `/api/v1/sessions/${doc.id}`)).status).toBe(204);
    expect((await a.call('GET', `/api/v1/sessions/${doc.id}`)).status).toBe(404);
    expect((await b.call('GET', `/api/v1/sessions/${doc.id}/files/${file.id}`)).status).toBe(404);
    expect((await a.getJson<{ items: Array<{ id: string }> }>('/api/v1/sessions')).items.map((s) => s.id)).not.toContain(doc.id);
    expect((await b.call('DELETE', `/api/v1/sessions/${doc.id}`)).status).toBe(404);
    expect((await a.getJson<{ usage: { sessions: number; files: number } }>('/api/v1/me')).usage).toMatchObject({ sessions: 2, files: 0 });
  });

  it("through nginx, every route answers another user's session and files exactly like missing ones, on every replica, and changes nothing", async () => {
    const alice = clientOf(front(), freshUser('alice'));
    const bob = clientOf(front(), freshUser('bob'));
    const created = await alice.call('POST', '/api/v1/sessions', { json: { title: 'secret', state: { plan: 'x' } } });
    expect(created.status).toBe(201);
    const aliceSession = created.json<SessionDoc>().id;
    expect((await alice.call('POST', `/api/v1/sessions/${aliceSession}/messages`, { json: { role: 'user', content: 'private' } })).status).toBe(201);
    const uploaded = await alice.upload(aliceSession, [{ name: 'secret.csv', type: 'text/csv', data: Buffer.from('private,figures\n1,2\n') }]);
    expect(uploaded.status).toBe(201);
    const aliceFile = uploaded.json<{ items: FileRecord[] }>().items[0]!.id;
    const bobSession = (await bob.call('POST', '/api/v1/sessions', { json: { title: 'bob' } })).json<SessionDoc>().id;
    const deletedSession = (await bob.call('POST', '/api/v1/sessions', {})).json<SessionDoc>().id;
    expect((await bob.call('DELETE', `/api/v1/sessions/${deletedSession}`)).status).toBe(204);

    const snapshotOfAlice = async () => ({
      session: await alice.getJson(`/api/v1/sessions/${aliceSession}`),
      messages: await alice.getJson(`/api/v1/sessions/${aliceSession}/messages`),
      list: await alice.getJson('/api/v1/sessions'),
      usage: (await alice.getJson<{ usage: unknown }>('/api/v1/me')).usage,
      files: await alice.getJson(`/api/v1/sessions/${aliceSession}/files`),
      file: sha256((await alice.call('GET', `/api/v1/sessions/${aliceSession}/files/${aliceFile}`)).body),
    });
    const snapshotOfBob = async () => ({
      usage: (await bob.getJson<{ usage: unknown }>('/api/v1/me')).usage,
      list: await bob.getJson('/api/v1/sessions'),
      files: await bob.getJson(`/api/v1/sessions/${bobSession}/files`),
    });
    const aliceBefore = await snapshotOfAlice();
    const bobBefore = await snapshotOfBob();

    const injected = multipart([filePart('injected.txt', 'text/plain', 'from bob')]);
    type Route = [string, (s: string, f: string) => Promise<Reply>];
    const sessionRoutes: Route[] = [
      ['GET session', (s) => bob.call('GET', `/api/v1/sessions/${s}`)],
      ['PATCH session', (s) => bob.call('PATCH', `/api/v1/sessions/${s}`, { json: { title: 'stolen' } })],
      ['PATCH session with If-Match', (s) => bob.call('PATCH', `/api/v1/sessions/${s}`, { headers: { 'If-Match': '"v1"' }, json: { state: {} } })],
      ['DELETE session', (s) => bob.call('DELETE', `/api/v1/sessions/${s}`)],
      ['GET messages', (s) => bob.call('GET', `/api/v1/sessions/${s}/messages`)],
      ['POST message', (s) => bob.call('POST', `/api/v1/sessions/${s}/messages`, { json: { role: 'user', content: 'injected' } })],
      ['GET files', (s) => bob.call('GET', `/api/v1/sessions/${s}/files`)],
      ['POST files', (s) => bob.call('POST', `/api/v1/sessions/${s}/files`, { headers: { 'Content-Type': injected.contentType }, body: injected.body })],
    ];
    const fileRoutes: Route[] = [
      ['GET file', (s, f) => bob.call('GET', `/api/v1/sessions/${s}/files/${f}`)],
      ['GET file with Range', (s, f) => bob.call('GET', `/api/v1/sessions/${s}/files/${f}`, { headers: { Range: 'bytes=0-3' } })],
      ['HEAD file', (s, f) => bob.call('HEAD', `/api/v1/sessions/${s}/files/${f}`)],
      ['DELETE file', (s, f) => bob.call('DELETE', `/api/v1/sessions/${s}/files/${f}`)],
    ];
    // Each case: a route, and what it names. "alice" must answer exactly like the others in its group.
    const missingSession = randomUUID();
    const missingFile = randomUUID();
    const cases: Array<{ route: string; target: string; group: string; send: () => Promise<Reply> }> = [];
    for (const [route, call] of [...sessionRoutes, ...fileRoutes]) {
      for (const [target, s, f] of [
        ['alice', aliceSession, aliceFile],
        ['missing', missingSession, missingFile],
        ['deleted', deletedSession, aliceFile],
      ] as const) {
        cases.push({ route, target, group: route, send: () => call(s, f) });
      }
    }
    for (const [route, call] of fileRoutes) {
      cases.push({ route, target: "alice's file in bob's session", group: `${route} in own session`, send: () => call(bobSession, aliceFile) });
      cases.push({ route, target: "a missing file in bob's session", group: `${route} in own session`, send: () => call(bobSession, missingFile) });
    }
    const shape = (r: Reply) => {
      const body = r.body.length > 0 ? r.json() : null;
      const { requestId, ...rest } = body ?? {};
      return { status: r.status, contentType: r.headers['content-type'], body: rest, hasRequestId: body === null || typeof requestId === 'string' };
    };

    // Sequential rounds, padded with requests of bob's own so that each round shifts the
    // round-robin by one: within three rounds every case reaches every replica. Rounds go on
    // (at most six) until that is so.
    const replicas = set.replicas.length;
    const padding = (((1 - cases.length) % replicas) + replicas) % replicas;
    const answers: Array<{ key: string; group: string; reply: Reply }> = [];
    const reached = new Map<string, Set<number>>();
    for (let round = 0; round < 6; round++) {
      const roundReplies: Reply[] = [];
      for (const c of cases) {
        const reply = await c.send();
        answers.push({ key: `${c.route} -> ${c.target}`, group: c.group, reply });
        roundReplies.push(reply);
      }
      for (let p = 0; p < padding; p++) roundReplies.push(await bob.call('GET', '/api/v1/me'));
      const served = await whoServed(set.logs, roundReplies.map((r) => r.requestId));
      served.slice(0, cases.length).forEach(({ replica }, i) => {
        const key = `${cases[i]!.route} -> ${cases[i]!.target}`;
        reached.set(key, (reached.get(key) ?? new Set()).add(replica));
      });
      if (round >= 2 && [...reached.values()].every((r) => r.size === replicas)) break;
    }
    expect([...reached].filter(([, r]) => r.size < replicas).map(([key]) => key)).toEqual([]);

    const firstOfGroup = new Map<string, ReturnType<typeof shape>>();
    for (const { key, group, reply } of answers) {
      const seen = shape(reply);
      if (!firstOfGroup.has(group)) firstOfGroup.set(group, seen);
      expect({ key, ...seen }).toEqual({ key, ...firstOfGroup.get(group)! });
      expect({ key, status: reply.status }).toEqual({ key, status: 404 });
      expect(reply.text()).not.toMatch(/secret|private|alice/);
    }

    expect(await snapshotOfAlice()).toEqual(aliceBefore);
    expect(await snapshotOfBob()).toEqual(bobBefore);
    expect(await adminQuery('SELECT count(*)::int AS n FROM files WHERE user_id = $1', [bob.user])).toEqual([{ n: 0 }]);
    expect(await adminQuery('SELECT count(*)::int AS n FROM messages WHERE user_id = $1', [bob.user])).toEqual([{ n: 0 }]);

    // Alice's listing cursor, issued by one replica, is refused for bob on each of them like a forged one.
    for (const title of ['two', 'three']) expect((await alice.call('POST', '/api/v1/sessions', { json: { title } })).status).toBe(201);
    const page = await alice.getJson<{ nextCursor: string }>('/api/v1/sessions?limit=1');
    for (let i = 0; i < 3; i++) {
      const stolen = await bob.call('GET', `/api/v1/sessions?cursor=${encodeURIComponent(page.nextCursor)}`);
      expect(stolen.status).toBe(400);
    }
  });
});

describe('three replicas behind deploy/nginx.conf, one of them killed', () => {
  let set: ReplicaSet;
  const front = () => set.front.url;

  beforeAll(async () => {
    set = await startReplicaSet(
      3,
      {
        ...serviceEnv(),
        RATE_LIMIT_MAX: '1000000',
        RATE_LIMIT_IP_MAX: '1000000',
        USER_QUOTA_BYTES: String(QUOTA),
        // Short, so that the killed replica's reservations expire within the test.
        UPLOAD_RESERVATION_TTL_S: String(RESERVATION_TTL_S),
        UPLOAD_IDLE_TIMEOUT_MS: String(UPLOAD_IDLE_TIMEOUT_MS),
      },
      `${workDir!}/crash`,
    );
    sets.push(set);
  });
  afterAll(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await set?.stop();
  });

  it('kill -9 of a replica mid-burst: the others keep serving, no acknowledged write is lost, its reservations are swept', async () => {
    const victim = 2;
    const survivors = set.replicas.filter((_, i) => i !== victim);
    const writers = range(1, 4).map((n) => clientOf(front(), freshUser(`burst${n}`)));
    // Uploaders are users of their own: an upload then does not queue behind its user's other
    // writes on the usage row, which the 2 s idle timer would count against it (file header).
    const uploaders = range(1, 3).map((n) => clientOf(front(), freshUser(`burstup${n}`)));
    const halfSent = range(1, 2).map((n) => freshUser(`halfsent${n}`));

    // Two sessions per writer and uploader, made before the burst.
    const seeds = new Map<string, string[]>();
    const acked = {
      sessions: new Map<string, { user: string; title: string; state: Record<string, unknown> }>(),
      patches: new Map<string, Map<number, Record<string, unknown>>>(),
      messages: [] as Array<{ user: string; sessionId: string; message: Message }>,
      files: [] as Array<{ user: string; sessionId: string; record: FileRecord; data: Buffer }>,
    };
    for (const w of [...writers, ...uploaders]) {
      const ids: string[] = [];
      for (const n of [1, 2]) {
        const res = await w.call('POST', '/api/v1/sessions', { json: { title: `${w.user} seed ${n}`, state: { seed: n } } });
        expect(res.status).toBe(201);
        const doc = res.json<SessionDoc>();
        acked.sessions.set(doc.id, { user: w.user, title: doc.title, state: doc.state });
        ids.push(doc.id);
      }
      seeds.set(w.user, ids);
    }

    // Uploads half-sent straight to the victim, kept alive by a trickle (the idle timeout is 2 s).
    const victimPort = Number(new URL(set.replicas[victim]!.url).port);
    for (const user of halfSent) {
      const c = clientOf(set.replicas[victim]!.url, user);
      const res = await c.call('POST', '/api/v1/sessions', { json: { title: 'half-sent' } });
      expect(res.status).toBe(201);
      const body = multipart([filePart('half-sent.png', 'image/png', png(600 * KiB))]);
      const socket = connect({ port: victimPort, host: '127.0.0.1', localAddress: c.from });
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.write(
        `POST /api/v1/sessions/${res.json<SessionDoc>().id}/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${c.auth.Authorization}\r\n` +
          `Content-Type: ${body.contentType}\r\nContent-Length: ${body.body.length}\r\n\r\n`,
      );
      let sent = 20 * KiB;
      socket.write(body.body.subarray(0, sent));
      const trickle = setInterval(() => {
        if (socket.destroyed || sent + KiB >= body.body.length - KiB) return;
        socket.write(body.body.subarray(sent, sent + KiB));
        sent += KiB;
      }, 200);
      socket.once('close', () => clearInterval(trickle));
    }
    await eventually(
      async () => (await adminQuery('SELECT 1 FROM upload_reservations WHERE user_id = ANY($1) AND files = 1', [halfSent])).length === 2,
      'the half-sent uploads to hold their reservations',
      20_000,
    );

    // The burst through nginx: per writer two appenders, a patcher and a reader (two writers
    // also create sessions); per uploader, uploads one after the other.
    let stopped = false;
    let killedAt = Infinity;
    const orphaned: string[] = [];
    type Kind = 'session' | 'message' | 'patch' | 'file';
    const writes: Array<{ kind: Kind; startedAt: number; status: number | string; requestId: string }> = [];
    const reads: Array<{ startedAt: number; status: number | string }> = [];
    const loop = async (work: (i: number) => Promise<void>) => {
      for (let i = 0; !stopped; i++) await work(i);
    };
    const ok = (status: number | string) => typeof status === 'number' && status >= 200 && status < 300;
    const write = async (
      kind: Kind,
      w: ReturnType<typeof clientOf>,
      method: string,
      path: string,
      options: Omit<SendOptions, 'from'>,
    ): Promise<Reply | null> => {
      const startedAt = Date.now();
      try {
        const res = await w.call(method, path, options);
        writes.push({ kind, startedAt, status: res.status, requestId: res.requestId });
        return ok(res.status) ? res : null;
      } catch (error) {
        writes.push({ kind, startedAt, status: (error as Error).message, requestId: '' });
        return null;
      }
    };
    const workers: Array<Promise<void>> = [];
    for (const [n, w] of writers.entries()) {
      const mine = seeds.get(w.user)!;
      // Two of the writers also create sessions (each one is read back at the end).
      if (n < 2) {
        workers.push(
          loop(async (i) => {
            const title = `${w.user} burst ${i}`;
            const state = { made: i, pad: 'c'.repeat(50 + i) };
            const res = await write('session', w, 'POST', '/api/v1/sessions', { json: { title, state } });
            if (res) acked.sessions.set(res.json<SessionDoc>().id, { user: w.user, title, state });
          }),
        );
      }
      for (const k of [0, 1]) {
        workers.push(
          loop(async (i) => {
            const sessionId = mine[(i + k) % 2]!;
            const res = await write('message', w, 'POST', `/api/v1/sessions/${sessionId}/messages`, {
              json: { role: i % 3 === 0 ? 'assistant' : 'user', content: `${w.user} k${k} #${i}`, metadata: { k, i } },
            });
            if (res) acked.messages.push({ user: w.user, sessionId, message: res.json<Message>() });
          }),
        );
      }
      workers.push(
        loop(async (i) => {
          const sessionId = mine[i % 2]!;
          const state = { patched: i, pad: 'p'.repeat(20 + (i % 40)) };
          const res = await write('patch', w, 'PATCH', `/api/v1/sessions/${sessionId}`, { json: { state } });
          if (res) {
            const versions = acked.patches.get(sessionId) ?? new Map<number, Record<string, unknown>>();
            versions.set(res.json<SessionDoc>().version, state);
            acked.patches.set(sessionId, versions);
          }
        }),
      );
      workers.push(
        loop(async (i) => {
          const startedAt = Date.now();
          const path = i % 2 === 0 ? `/api/v1/sessions/${mine[0]!}` : '/api/v1/me';
          const status = await w.call('GET', path).then(
            (r) => r.status,
            (error: Error) => error.message,
          );
          reads.push({ startedAt, status });
        }),
      );
    }
    for (const u of uploaders) {
      const mine = seeds.get(u.user)!;
      workers.push(
        loop(async (i) => {
          const sessionId = mine[i % 2]!;
          const data = png(KiB + (i % 7) * 100);
          const body = multipart([filePart(`burst-${i}.png`, 'image/png', data)]);
          const res = await write('file', u, 'POST', `/api/v1/sessions/${sessionId}/files`, { headers: { 'Content-Type': body.contentType }, body: body.body });
          if (res) acked.files.push({ user: u.user, sessionId, record: res.json<{ items: FileRecord[] }>().items[0]!, data });
        }),
      );
    }
    const ackedSince = (since: number, kind: Kind) => writes.filter((x) => x.kind === kind && x.startedAt > since && ok(x.status)).length;
    try {
      // Kill once every kind of write has been acknowledged a few times and the victim has served its share.
      const progress = (since: number) => ({
        messages: ackedSince(since, 'message'),
        sessions: ackedSince(since, 'session'),
        patches: ackedSince(since, 'patch'),
        files: ackedSince(since, 'file'),
        reads: reads.filter((r) => r.startedAt > since && r.status === 200).length,
        servedByVictim: set.logs[victim]!.refresh().lines.filter((l) => l.category === 'request' && String(l.userId).includes('-burst')).length,
      });
      const enough = (p: ReturnType<typeof progress>, n: number) =>
        p.messages >= 4 * n && p.sessions >= n && p.patches >= n && p.files >= n && p.reads >= 4 * n;
      await eventually(async () => enough(progress(0), 5) && progress(0).servedByVictim >= 10, 'the burst to get going', 60_000).catch((error: Error) => {
        throw new Error(`${error.message}: ${JSON.stringify(progress(0))}`);
      });
      set.replicas[victim]!.proc.kill('SIGKILL');
      expect(await set.replicas[victim]!.exited).toEqual({ code: null, signal: 'SIGKILL' });
      killedAt = Date.now();
      // The half-sent uploads were alive at the kill: their reservations are the dead replica's to leave behind.
      orphaned.push(...(await adminQuery<{ id: string }>('SELECT id::text FROM upload_reservations WHERE user_id = ANY($1)', [halfSent])).map((r) => r.id));
      expect(orphaned).toHaveLength(2);
      // The others keep serving: writes and reads started after the kill are answered.
      await eventually(async () => enough(progress(killedAt), 5), 'the survivors to take over the burst', 60_000).catch((error: Error) => {
        throw new Error(`${error.message}: ${JSON.stringify(progress(killedAt))}`);
      });
    } finally {
      stopped = true;
      await Promise.all(workers);
    }
    for (const socket of sockets.splice(0)) socket.destroy();

    // Reads are idempotent: nginx moves them on, so none started after the kill failed; both
    // survivors answered writes started after it; a write may fail only as the dead replica's
    // (a 502: nginx does not retry a POST or PATCH it had sent).
    const servedAfter = await whoServed(
      set.logs,
      writes.filter((x) => x.startedAt > killedAt && ok(x.status)).map((x) => x.requestId),
    );
    const afterKill = {
      failedReads: reads.filter((r) => r.startedAt > killedAt && r.status !== 200).length,
      answeredBy: [...new Set(servedAfter.map((s) => s.replica))].sort(),
      failedWrites: [...new Set(writes.filter((x) => !ok(x.status)).map((x) => x.status))].filter((s) => s !== 502),
    };
    const expected = { failedReads: 0, answeredBy: [0, 1, 2].filter((i) => i !== victim), failedWrites: [] };
    const healthy = JSON.stringify(afterKill) === JSON.stringify(expected);
    // On failure, what nginx said about the survivors, and the requests they saw cut off.
    const diagnosis = async () => ({
      nginx: (await set.front.errorLog()).split('\n').filter((l) => l && !l.includes(new URL(set.replicas[victim]!.url).host)).slice(0, 20),
      aborted: survivors.map((r) => logLines(r.stdout()).filter((l) => l.aborted)),
    });
    expect({ ...afterKill, ...(healthy ? {} : await diagnosis()) }).toEqual(expected);

    // The dead replica's reservations (the half-sent uploads, and any burst upload it had in
    // flight) are swept by a survivor, as the database shows.
    const everyone = [...writers, ...uploaders].map((w) => w.user).concat(halfSent);
    await eventually(
      async () =>
        (await adminQuery('SELECT 1 FROM upload_reservations WHERE user_id = ANY($1) OR id = ANY($2::uuid[])', [everyone, orphaned])).length === 0,
      'the dead replica’s reservations to be swept',
      30_000,
    );
    await eventually(
      async () => survivors.some((r) => logLines(r.stdout()).some((l) => l.message === 'expired upload reservations swept' && l.category === 'recovery')),
      'a survivor to log the sweep',
    );

    // What each user has now, read through the survivors in turn.
    let turn = 0;
    const viaSurvivors = (user: string) => {
      const clients = survivors.map((r) => clientOf(r.url, user));
      return {
        getJson: <T>(path: string) => clients[turn++ % clients.length]!.getJson<T>(path),
        call: (method: string, path: string) => clients[turn++ % clients.length]!.call(method, path),
      };
    };
    const now = await Promise.all(
      everyone.map(async (user) => {
        const via = viaSurvivors(user);
        const sessions = await everythingOf(via.getJson);
        const me = await via.getJson<{ usage: { sessions: number; files: number; bytes: number }; limits: { fileOverheadBytes: number } }>('/api/v1/me');
        const [row] = await adminQuery('SELECT sessions, files, bytes::int, reserved::int FROM usage WHERE user_id = $1', [user]);
        return { user, sessions, me, row };
      }),
    );
    const stored = new Map(now.map(({ user, sessions }) => [user, sessions]));
    const storedSession = (user: string, id: string) => stored.get(user)!.get(id);

    // Every acknowledged write is there.
    for (const [id, { user, title, state }] of acked.sessions) {
      const session = storedSession(user, id);
      expect({ id, title: session?.doc.title }).toEqual({ id, title });
      if (!acked.patches.has(id)) expect({ id, version: session?.doc.version, state: session?.doc.state }).toEqual({ id, version: 1, state });
    }
    for (const [id, versions] of acked.patches) {
      const doc = storedSession(acked.sessions.get(id)!.user, id)!.doc;
      expect(doc.version).toBeGreaterThanOrEqual(Math.max(...versions.keys()));
      // The stored version may be a PATCH whose answer the kill cut off; if it was acknowledged, its state.
      if (versions.has(doc.version)) expect(doc.state).toEqual(versions.get(doc.version));
    }
    for (const [user, sessions] of stored) {
      for (const [id, { messages }] of sessions) {
        expect({ user, id, seqs: messages.map((m) => m.seq) }).toEqual({ user, id, seqs: range(1, messages.length) });
      }
    }
    for (const { user, sessionId, message } of acked.messages) expect(storedSession(user, sessionId)!.messages[message.seq - 1]).toEqual(message);
    await Promise.all(
      acked.files.map(async ({ user, sessionId, record, data }) => {
        expect(storedSession(user, sessionId)!.files.find((f) => f.id === record.id)).toEqual(record);
        const download = await viaSurvivors(user).call('GET', `/api/v1/sessions/${sessionId}/files/${record.id}`);
        expect({ id: record.id, status: download.status, same: download.body.equals(data) }).toEqual({ id: record.id, status: 200, same: true });
      }),
    );

    // Per user, nothing is reserved any more and usage adds up: /me and the usage table against what is stored.
    for (const { user, sessions, me, row } of now) {
      const files = [...sessions.values()].reduce((n, s) => n + s.files.length, 0);
      const expected = { sessions: sessions.size, files, bytes: chargedBytes(sessions, me.limits.fileOverheadBytes) };
      expect({ user, usage: me.usage, row }).toEqual({ user, usage: expected, row: { ...expected, reserved: 0 } });
    }
    for (const user of halfSent) {
      expect(await adminQuery('SELECT count(*)::int AS n FROM files WHERE user_id = $1', [user])).toEqual([{ n: 0 }]);
    }
    // The bucket ends up holding exactly the committed files (the outbox drains whatever was orphaned).
    await eventually(async () => (await adminQuery('SELECT 1 FROM blob_outbox')).length === 0, 'the outbox to drain', 30_000);
    const recorded = (await adminQuery<{ id: string }>('SELECT id::text FROM files')).map((f) => `object files/${f.id}`).sort();
    expect((await s3!.contents(BUCKET)).filter((line) => line.startsWith('object '))).toEqual(recorded);
  });
});

describe('rate limits of three replicas count once, in Redis', () => {
  let set: ReplicaSet;

  beforeAll(async () => {
    set = await startReplicaSet(3, { ...serviceEnv(), RATE_LIMIT_MAX: '30', RATE_LIMIT_IP_MAX: '30' }, `${workDir!}/limits`);
    sets.push(set);
  });
  afterAll(async () => {
    await set?.stop();
  });

  /** Sends `count` requests through nginx one after the other; the answers and which replica gave each. */
  async function sequence(count: number, request: (i: number) => Promise<Reply>) {
    const replies: Reply[] = [];
    for (let i = 0; i < count; i++) replies.push(await request(i));
    const served = await whoServed(set.logs, replies.map((r) => r.requestId));
    return replies.map((r, i) => ({ status: r.status, ratelimit: String(r.headers.ratelimit ?? ''), replica: served[i]!.replica, line: served[i]!.line }));
  }

  it("counts a user's requests across the replicas: the 31st is a 429 whichever replica answers", async () => {
    const user = freshUser('rl-user');
    const auth = authOf(user);
    // Every request from an address of its own, so only the per-user limit can refuse.
    const seen = await sequence(33, () => send(`${set.front.url}/api/v1/me`, { from: freshSource(), fresh: true, headers: auth }));
    expect(seen.map((s) => s.status)).toEqual([...Array(30).fill(200), 429, 429, 429]);
    expect(new Set(seen.slice(0, 30).map((s) => s.replica))).toEqual(new Set([0, 1, 2]));
    expect(new Set(seen.slice(30).map((s) => s.replica))).toEqual(new Set([0, 1, 2]));
    for (const s of seen.slice(30)) expect(s.ratelimit).toMatch(/"user"; r=0/);
    expect(await redis.get(`sv:rl:user:user:${user}`)).toBe('33');
  });

  it('counts a client address across the replicas (the one nginx saw, not a spoofed X-Forwarded-For): the 31st is a 429 whichever replica answers', async () => {
    const from = freshSource();
    const seen = await sequence(33, (i) =>
      send(`${set.front.url}/api/v1/me`, { from, headers: { Authorization: 'Bearer not.a.token', 'X-Forwarded-For': `10.9.8.${i + 1}` } }),
    );
    expect(seen.map((s) => s.status)).toEqual([...Array(30).fill(401), 429, 429, 429]);
    expect(new Set(seen.slice(0, 30).map((s) => s.replica))).toEqual(new Set([0, 1, 2]));
    expect(new Set(seen.slice(30).map((s) => s.replica))).toEqual(new Set([0, 1, 2]));
    for (const s of seen.slice(30)) expect(s.ratelimit).toMatch(/"ip"; r=0/);
    for (const s of seen) expect(s.line.ip).toBe(from);
    expect(await redis.get(`sv:rl:ip:${from}`)).toBe('33');
    // Another address has a budget of its own, on every replica.
    const other = freshSource();
    const fresh = await sequence(3, () => send(`${set.front.url}/api/v1/me`, { from: other, headers: { Authorization: 'Bearer not.a.token' } }));
    expect(fresh.map((s) => s.status)).toEqual([401, 401, 401]);
  });
});
