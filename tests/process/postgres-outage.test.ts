/**
 * The real process on PostgreSQL + S3 while one of them goes away and comes back, as an
 * operator sees it. The service reaches PostgreSQL and the S3 endpoint through TCP proxies
 * the test cuts (tests/helpers/tcp-proxy.ts); migrations go direct.
 *
 * While a dependency is gone: /healthz stays 200 (the process lives, nothing to restart),
 * /readyz turns 503 (the balancer stops sending traffic), and every request that needs the
 * missing dependency is answered 503 application/problem+json with Retry-After, within a
 * bound far below a hang (the database's statement timeout plus a margin; for a bucket that
 * takes requests and never answers, the store's answer deadline per request to it plus a
 * margin), never a 500 and never naming the database, the endpoint or a stack. Once it is
 * back: /readyz 200, requests succeed at once, and everything written before the outage is
 * there, unchanged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import jwt from 'jsonwebtoken';
import { Client } from 'pg';
import { ANSWER_TIMEOUT_MS } from '../../src/storage/s3/s3-blob-store';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { eventually } from '../helpers/raw-upload';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver';
import { startServer, type ServerProcess } from '../helpers/server-process';
import { startTcpProxy, type CutMode, type TcpProxy } from '../helpers/tcp-proxy';
import { makeTempDir } from '../helpers/temp-dir';
import { TEST_SECRET } from '../helpers/test-app';

jest.setTimeout(120_000);

const STATEMENT_TIMEOUT_MS = 1500;
/**
 * No answer may take longer than this: an upper bound on a hang, not a performance target.
 * The slowest answer today comes to a request holding a pooled connection the blackhole
 * swallowed: its statement gives up after pg's query_timeout (statement timeout + 1 s), then
 * the ROLLBACK on the same dead connection waits as long again.
 */
const ANSWER_BOUND_MS = STATEMENT_TIMEOUT_MS + 5000;
/**
 * The same while the bucket takes connections and never answers: each request to it fails
 * after the store's answer deadline (not retried, so once, not per attempt). A download waits
 * on one such request, a failed upload on two: its put, then the delete of whatever the put
 * may have left.
 */
const BLACKHOLED_DOWNLOAD_BOUND_MS = ANSWER_TIMEOUT_MS + 5000;
const BLACKHOLED_UPLOAD_BOUND_MS = 2 * ANSWER_TIMEOUT_MS + 5000;
/** A fetch that has not answered by now is recorded as hung rather than holding the test. */
const HUNG_MS = 30_000;
const BUCKET = 'vault-outage';

let database: TestDatabase;
let s3: S3rverHandle;
let pgProxy: TcpProxy;
let s3Proxy: TcpProxy;
let dataDir: string;
let env: Record<string, string>;
/** One process for the whole file; replaced only if a test left it dead, so one crash fails one test. */
let server: ServerProcess | undefined;

/** Strings that must never reach a client: how to reach the database or the store. */
let secrets: string[] = [];

beforeAll(async () => {
  dataDir = await makeTempDir();
  database = await createTestDatabase();
  s3 = await startS3rver();
  const direct = new URL(database.databaseUrl);
  pgProxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port) });
  const s3Direct = new URL(s3.endpoint);
  s3Proxy = await startTcpProxy({ host: s3Direct.hostname, port: Number(s3Direct.port) });
  const viaProxy = new URL(database.databaseUrl);
  viaProxy.port = String(pgProxy.port);
  const settings = s3.settings(BUCKET);
  secrets = [
    'postgres://',
    database.name,
    database.appRole,
    database.ownerRole,
    `:${pgProxy.port}`,
    `:${s3Proxy.port}`,
    `:${s3Direct.port}`,
    'S3RVER',
    'ECONN',
  ];
  env = {
    STORAGE_BACKEND: 'postgres',
    DATA_DIR: dataDir,
    JWT_SECRET: TEST_SECRET,
    DATABASE_URL: viaProxy.toString(),
    DATABASE_MIGRATION_URL: database.migrationUrl,
    DATABASE_POOL_MAX: '5',
    DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
    BLOB_STORE: 's3',
    S3_ENDPOINT: `http://${s3Proxy.host}:${s3Proxy.port}`,
    S3_BUCKET: settings.bucket,
    S3_REGION: settings.region,
    S3_ACCESS_KEY_ID: settings.accessKeyId!,
    S3_SECRET_ACCESS_KEY: settings.secretAccessKey!,
    S3_FORCE_PATH_STYLE: 'true',
    RATE_LIMIT_MAX: '1000000',
    RATE_LIMIT_IP_MAX: '1000000',
  };
});

afterAll(async () => {
  await server?.stop();
  await Promise.allSettled([pgProxy?.close(), s3Proxy?.close()]);
  await Promise.allSettled([database?.drop(), s3?.stop()]);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

beforeEach(async () => {
  if (!server || server.proc.exitCode !== null || server.proc.signalCode !== null) server = await startServer(env);
  await eventually(async () => (await probe('/readyz')).status === 200, 'the service to be ready', 20_000);
});

/** Load and row locks still held (by a test that failed half way); let go after each test. */
const loads = new Set<{ stop(): Promise<unknown> }>();

afterEach(async () => {
  await Promise.allSettled([...loads].map((l) => l.stop()));
  loads.clear();
  // A test that failed half way must not leave the next one without its dependencies.
  await Promise.allSettled([pgProxy.restore(), s3Proxy.restore()]);
});

const tokenFor = (userId: string) => jwt.sign({ sub: userId }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 });

interface Answer {
  route: string;
  status: number;
  headers: Headers;
  body: Buffer;
  ms: number;
}

/** One request, timed; a request that does not answer in HUNG_MS comes back as status 0. */
async function call(userId: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { Authorization: `Bearer ${tokenFor(userId)}` };
  let payload: string | FormData | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const route = `${method} ${path}`;
  const started = performance.now();
  try {
    const res = await fetch(`${server!.url}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(HUNG_MS) });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { route, status: res.status, headers: res.headers, body: bytes, ms: performance.now() - started };
  } catch {
    return { route, status: 0, headers: new Headers(), body: Buffer.alloc(0), ms: performance.now() - started };
  }
}

async function probe(path: '/readyz' | '/healthz'): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  try {
    const res = await fetch(`${server!.url}${path}`, { signal: AbortSignal.timeout(HUNG_MS) });
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - started };
  } catch {
    return { status: 0, ms: performance.now() - started };
  }
}

/** The process is still there; if it died, why (its last words, on the test's own output only). */
function expectRunning(): void {
  const { exitCode, signalCode } = server!.proc;
  if (exitCode !== null || signalCode !== null) {
    throw new Error(`the service exited (${exitCode ?? signalCode}); its stderr ends with:\n${server!.stderr().slice(-2000)}`);
  }
}

function json<T>(answer: Answer): T {
  return JSON.parse(answer.body.toString('utf8')) as T;
}

/** A PNG by its signature, `bytes` long, random otherwise. */
function png(bytes: number): Buffer {
  const data = randomBytes(bytes);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(data);
  return data;
}

function form(name: string, data: Buffer): FormData {
  const body = new FormData();
  body.append('file', new Blob([data], { type: 'image/png' }), name);
  return body;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * What an operator checks about an answer given while a dependency is gone, as one object
 * so that a failure shows every deviation at once.
 */
function unavailableShape(answer: Answer, boundMs = ANSWER_BOUND_MS) {
  const text = answer.body.toString('utf8');
  let problem: Record<string, unknown> = {};
  try {
    problem = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // left empty: the shape check below reports it
  }
  return {
    route: answer.route,
    status: answer.status,
    contentType: answer.headers.get('content-type')?.split(';')[0],
    retryAfter: /^\d+$/.test(answer.headers.get('retry-after') ?? '') ? 'seconds' : answer.headers.get('retry-after'),
    problem: { status: problem.status, type: problem.type, hasDetail: typeof problem.detail === 'string', hasRequestId: typeof problem.requestId === 'string' },
    answeredInTime: answer.ms < boundMs ? true : `answered after ${Math.round(answer.ms)} ms`,
    leaks: [...secrets.filter((s) => text.includes(s)), ...(/\bat [^\n]*:\d+:\d+|stack/i.test(text) ? ['a stack trace'] : [])],
  };
}

function expectedUnavailable(route: string) {
  return {
    route,
    status: 503,
    contentType: 'application/problem+json',
    retryAfter: 'seconds',
    problem: { status: 503, type: '/problems/service-unavailable', hasDetail: true, hasRequestId: true },
    answeredInTime: true,
    leaks: [],
  };
}

async function adminQuery<T extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: database.adminUrl });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** What a user has before an outage: a session with a state, messages and a file. */
async function seed(userId: string) {
  const created = await call(userId, 'POST', '/api/v1/sessions', { title: 'before the outage', state: { step: 1 } });
  expect(created.status).toBe(201);
  const sessionId = json<{ id: string }>(created).id;
  const patched = await call(userId, 'PATCH', `/api/v1/sessions/${sessionId}`, { state: { step: 2, notes: ['kept'] } });
  expect(patched.status).toBe(200);
  for (const content of ['one', 'two', 'three']) {
    expect((await call(userId, 'POST', `/api/v1/sessions/${sessionId}/messages`, { role: 'user', content })).status).toBe(201);
  }
  const data = png(300 * 1024);
  const uploaded = await call(userId, 'POST', `/api/v1/sessions/${sessionId}/files`, form('before.png', data));
  expect(uploaded.status).toBe(201);
  const fileId = json<{ items: Array<{ id: string }> }>(uploaded).items[0]!.id;
  return { sessionId, fileId, data, snapshot: () => snapshot(userId, sessionId, fileId) };
}

/** Everything a user can read of the seeded data, to compare before and after. */
async function snapshot(userId: string, sessionId: string, fileId: string) {
  const [session, messages, files, download, me] = await Promise.all([
    call(userId, 'GET', `/api/v1/sessions/${sessionId}`),
    call(userId, 'GET', `/api/v1/sessions/${sessionId}/messages`),
    call(userId, 'GET', `/api/v1/sessions/${sessionId}/files`),
    call(userId, 'GET', `/api/v1/sessions/${sessionId}/files/${fileId}`),
    call(userId, 'GET', '/api/v1/me'),
  ]);
  return {
    statuses: [session.status, messages.status, files.status, download.status, me.status],
    session: json<unknown>(session),
    messages: json<unknown>(messages),
    files: json<unknown>(files),
    download: sha256(download.body),
    usage: json<{ usage: unknown }>(me).usage,
  };
}

/** Polls readiness until it says `status`; how long that took. */
async function readinessBecomes(status: 200 | 503, what: string): Promise<number> {
  const started = performance.now();
  await eventually(
    async () => {
      expectRunning();
      return (await probe('/readyz')).status === status;
    },
    what,
    20_000,
  );
  return performance.now() - started;
}

/** Once ready again, requests succeed at once: no stale connection is handed to a request. */
async function expectServingAgain(userId: string, sessionId: string): Promise<void> {
  const answers = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      i % 2 === 0 ? call(userId, 'GET', `/api/v1/sessions/${sessionId}`) : call(userId, 'GET', '/api/v1/me'),
    ),
  );
  expect(answers.map((a) => `${a.route} ${a.status}`)).toEqual(answers.map((a) => `${a.route} 200`));
}

/**
 * Traffic that goes on while the dependency goes away and comes back: a few clients of
 * `userId` appending, reading and patching in a loop, so that requests are in the middle of
 * their transactions when connections die. Every answer is recorded.
 */
function startLoad(userId: string, sessionId: string): { answers: Answer[]; stop(): Promise<Answer[]> } {
  const answers: Answer[] = [];
  let stopped = false;
  const client = async (w: number) => {
    for (let i = 0; !stopped; i++) {
      const kind = (w + i) % 3;
      answers.push(
        kind === 0
          ? await call(userId, 'POST', `/api/v1/sessions/${sessionId}/messages`, { role: 'user', content: `load ${w}/${i}` })
          : kind === 1
            ? await call(userId, 'GET', `/api/v1/sessions/${sessionId}`)
            : await call(userId, 'PATCH', `/api/v1/sessions/${sessionId}`, { state: { w, i } }),
      );
      // Not a busy loop while every answer is a quick 503.
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const clients = Array.from({ length: 8 }, (_, w) => client(w));
  const load = {
    answers,
    async stop() {
      stopped = true;
      await Promise.all(clients);
      loads.delete(load);
      return answers;
    },
  };
  loads.add(load);
  return load;
}

/**
 * Holds `userId`'s usage row locked from a direct admin connection, so that every write of
 * that user waits on it inside its transaction; resolves once at least two of the service's
 * transactions are waiting there. Cutting then cuts connections with work in flight, as a
 * database restart under traffic does, rather than only idle ones.
 */
async function holdWritesInFlight(userId: string): Promise<{ release(): Promise<void> }> {
  const client = new Client({ connectionString: database.adminUrl });
  await client.connect();
  const lock = {
    async release() {
      loads.delete(lock);
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end().catch(() => undefined);
    },
    stop: () => lock.release(),
  };
  loads.add(lock);
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM usage WHERE user_id = $1 FOR UPDATE', [userId]);
  await eventually(
    async () =>
      (
        await adminQuery<{ waiting: number }>(
          "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND usename = $1 AND wait_event_type = 'Lock'",
          [database.appRole],
        )
      )[0]!.waiting >= 2,
    'writes of the service to wait on the locked row',
  );
  return lock;
}

/** Answers that are neither a success nor the 503 an outage deserves, described. */
function deviations(answers: Answer[]) {
  return answers
    .filter((a) => a.status < 200 || a.status > 299)
    .map((a) => unavailableShape(a))
    .filter((shape) => !isDeepStrictEqual(shape, expectedUnavailable(shape.route)));
}

describe.each<[CutMode, string]>([
  ['refuse', 'PostgreSQL down (connections cut, new ones refused)'],
  ['blackhole', 'PostgreSQL unresponsive (connections open, nothing answered)'],
])('database outage: %s', (mode, title) => {
  it(`${title}: /readyz 503, /healthz 200, every API request a bounded 503 with Retry-After; back: all intact`, async () => {
    const user = `outage-db-${mode}`;
    const seeded = await seed(user);
    const before = await seeded.snapshot();
    expect(before.statuses).toEqual([200, 200, 200, 200, 200]);
    const loadUser = `${user}-load`;
    const loadSession = json<{ id: string }>(await call(loadUser, 'POST', '/api/v1/sessions', { title: 'load' })).id;
    const load = startLoad(loadUser, loadSession);
    await eventually(async () => load.answers.filter((a) => a.status >= 200 && a.status < 300).length >= 20, 'the load to get going');

    // Cut while requests are in the middle of their transactions.
    const inFlight = await holdWritesInFlight(loadUser);
    await pgProxy.cut(mode);
    await inFlight.release();
    await readinessBecomes(503, 'readiness to turn 503 without the database');
    expectRunning();
    const { sessionId, fileId } = seeded;
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/api/v1/me'],
      ['GET', '/api/v1/sessions'],
      ['POST', '/api/v1/sessions', { title: 'during the outage' }],
      ['GET', `/api/v1/sessions/${sessionId}`],
      ['PATCH', `/api/v1/sessions/${sessionId}`, { state: { step: 'lost' } }],
      ['POST', `/api/v1/sessions/${sessionId}/messages`, { role: 'user', content: 'during the outage' }],
      ['GET', `/api/v1/sessions/${sessionId}/messages`],
      ['GET', `/api/v1/sessions/${sessionId}/files`],
      ['GET', `/api/v1/sessions/${sessionId}/files/${fileId}`],
      ['DELETE', `/api/v1/sessions/${sessionId}/files/${fileId}`],
      ['POST', `/api/v1/sessions/${sessionId}/files`, form('during.png', png(16 * 1024))],
      ['DELETE', `/api/v1/sessions/${sessionId}`],
    ];
    // All at once (more than the pool holds), then one by one: neither may hang or turn 500.
    const together = await Promise.all(routes.map(([method, path, body]) => call(user, method, path, body)));
    const oneByOne: Answer[] = [];
    for (const [method, path, body] of routes.slice(3, 6)) oneByOne.push(await call(user, method, path, body));
    const answers = [...together, ...oneByOne];
    expect(answers.map((a) => unavailableShape(a))).toEqual(answers.map((a) => expectedUnavailable(a.route)));

    const liveness = await probe('/healthz');
    expect(liveness.status).toBe(200);
    expect(liveness.ms).toBeLessThan(ANSWER_BOUND_MS);
    const readiness = await probe('/readyz');
    expect(readiness.status).toBe(503);
    expect(readiness.ms).toBeLessThan(ANSWER_BOUND_MS);

    await pgProxy.restore();
    await readinessBecomes(200, 'readiness to come back with the database');
    const loadAnswers = await load.stop();
    expectRunning();
    // Through the cut and the return, the load saw successes and bounded 503s, nothing else.
    expect(deviations(loadAnswers)).toEqual([]);
    expect(loadAnswers.filter((a) => a.status === 503).length).toBeGreaterThan(0);
    await expectServingAgain(user, sessionId);
    // Nothing of what was refused happened, nothing from before was lost.
    expect(await seeded.snapshot()).toEqual(before);
    const appended = await call(user, 'POST', `/api/v1/sessions/${sessionId}/messages`, { role: 'user', content: 'after' });
    expect(appended.status).toBe(201);
    expect(json<{ seq: number }>(appended).seq).toBe(4);
    const [usage] = await adminQuery<{ reserved: number }>('SELECT reserved::int FROM usage WHERE user_id = $1', [user]);
    expect(usage?.reserved).toBe(0);
  });
});

interface FileStoreOutage {
  takeAway(s3: S3rverHandle, proxy: TcpProxy): Promise<() => Promise<void>>;
  /** How long a download and an upload may take to be answered meanwhile. */
  bounds: { download: number; upload: number };
  /**
   * All requests at once while the metadata is read (a store that holds requests for their
   * deadline), or two at once and then one by one, the metadata read afterwards.
   */
  together: boolean;
}

describe.each<[string, FileStoreOutage]>([
  [
    'S3 down (connections cut, new ones refused)',
    {
      async takeAway(_s3, proxy) {
        await proxy.cut('refuse');
        return () => proxy.restore();
      },
      bounds: { download: ANSWER_BOUND_MS, upload: ANSWER_BOUND_MS },
      together: false,
    },
  ],
  [
    'S3 failing (every request a 500 InternalError)',
    {
      async takeAway(store) {
        const stopFailing = store.failRequests(() => true);
        return async () => stopFailing();
      },
      bounds: { download: ANSWER_BOUND_MS, upload: ANSWER_BOUND_MS },
      together: false,
    },
  ],
  [
    'S3 unresponsive (blackhole: connections taken, nothing answered)',
    {
      async takeAway(_s3, proxy) {
        await proxy.cut('blackhole');
        return () => proxy.restore();
      },
      bounds: { download: BLACKHOLED_DOWNLOAD_BOUND_MS, upload: BLACKHOLED_UPLOAD_BOUND_MS },
      together: true,
    },
  ],
])('file store outage: %s', (title, outage) => {
  it(`${title}: /readyz 503, downloads and uploads a bounded 503 with Retry-After, metadata still served; back: all intact, no orphan`, async () => {
    const user = `outage-s3-${title.split(' ')[1]}`;
    const seeded = await seed(user);
    const before = await seeded.snapshot();
    expect(before.statuses).toEqual([200, 200, 200, 200, 200]);

    const giveBack = await outage.takeAway(s3, s3Proxy);
    try {
      const { sessionId, fileId } = seeded;
      const download = () => call(user, 'GET', `/api/v1/sessions/${sessionId}/files/${fileId}`);
      const upload = (name: string, bytes: number) => call(user, 'POST', `/api/v1/sessions/${sessionId}/files`, form(name, png(bytes)));
      /** What needs no file bytes is still served, also while requests for bytes hang. */
      const metadata = () =>
        Promise.all([
          call(user, 'GET', `/api/v1/sessions/${sessionId}`),
          call(user, 'GET', `/api/v1/sessions/${sessionId}/files`),
          call(user, 'GET', '/api/v1/me'),
        ]);
      let answers: Answer[];
      let served: Answer[];
      if (outage.together) {
        const asked = Promise.all([download(), upload('during.png', 200 * 1024), upload('during-2.png', 20 * 1024), download()]);
        await readinessBecomes(503, 'readiness to turn 503 without the file store');
        served = await metadata();
        answers = await asked;
      } else {
        await readinessBecomes(503, 'readiness to turn 503 without the file store');
        answers = await Promise.all([download(), upload('during.png', 200 * 1024)]);
        answers.push(await upload('during-2.png', 20 * 1024));
        answers.push(await download());
        served = await metadata();
      }
      const boundOf = (a: Answer) => (a.route.startsWith('POST') ? outage.bounds.upload : outage.bounds.download);
      expect(answers.map((a) => unavailableShape(a, boundOf(a)))).toEqual(answers.map((a) => expectedUnavailable(a.route)));

      // Metadata served; the failed uploads hold no quota.
      const [session, listed, me] = served;
      expect([session!.status, listed!.status, me!.status]).toEqual([200, 200, 200]);
      expect(served.every((a) => a.ms < ANSWER_BOUND_MS)).toBe(true);
      expect(json<unknown>(listed!)).toEqual(before.files);
      expect(json<{ usage: unknown }>(me!).usage).toEqual(before.usage);
      const [usage] = await adminQuery<{ reserved: number }>('SELECT reserved::int FROM usage WHERE user_id = $1', [user]);
      expect(usage?.reserved).toBe(0);
      expect(await adminQuery('SELECT id FROM upload_reservations WHERE user_id = $1', [user])).toEqual([]);
      expect((await probe('/healthz')).status).toBe(200);
    } finally {
      await giveBack();
    }

    await readinessBecomes(200, 'readiness to come back with the file store');
    await expectServingAgain(user, seeded.sessionId);
    expect(await seeded.snapshot()).toEqual(before);
    const data = png(250 * 1024);
    const uploaded = await call(user, 'POST', `/api/v1/sessions/${seeded.sessionId}/files`, form('after.png', data));
    expect(uploaded.status).toBe(201);
    const [file] = json<{ items: Array<{ id: string; sha256: string }> }>(uploaded).items;
    expect(file?.sha256).toBe(sha256(data));
    const download = await call(user, 'GET', `/api/v1/sessions/${seeded.sessionId}/files/${file!.id}`);
    expect(download.status).toBe(200);
    expect(download.body.equals(data)).toBe(true);

    // The bucket holds exactly the committed files: the refused uploads left nothing behind.
    const committed = await adminQuery<{ id: string }>('SELECT id::text FROM files');
    await eventually(async () => (await adminQuery('SELECT 1 FROM blob_outbox')).length === 0, 'the outbox to drain', 20_000);
    expect(await s3.contents(BUCKET)).toEqual(committed.map((f) => `object files/${f.id}`).sort());
  });
});
