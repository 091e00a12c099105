/**
 * The listing summary (`<DATA_DIR>/summaries/<user dir>.json`) that lets a restarted service
 * list a large user without reading every session: after a restart the same pages, usage and
 * file lists come from it; it is a cache, never the source of truth, so every summary that is
 * damaged, another user's, or stale against the sessions on disk is ignored and the listing
 * is the disk's; the first write after a restart removes it before it changes anything; small
 * users and users with a damaged session get none; the legacy cleanup leaves it alone and
 * check-data --repair removes it. Real data directories; the app in process.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { appendFile, lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { checkData } from '../../../src/storage/fs/data-check';
import { cleanLegacyData } from '../../../src/storage/fs/legacy-cleanup';
import { DataPaths } from '../../../src/storage/fs/paths';
import { SUMMARY_MIN_SESSIONS } from '../../../src/storage/fs/user-summary';
import { captureLog, type LogCapture } from '../../helpers/log-capture';
import { filePart, multipart } from '../../helpers/multipart';
import { bearer, makeTempDir, startTestApp, type TestApp } from '../../helpers/test-app';
import { waitFor } from '../../helpers/wait-for';

const ENV = { RATE_LIMIT_MAX: '1000000', RATE_LIMIT_IP_MAX: '1000000' };
const SEEDED = SUMMARY_MIN_SESSIONS + 10;

let t: TestApp;
let running = false;
let log: LogCapture;
/** Where a test keeps things outside the data directory (same filesystem, for renames). */
let outside: string;
/** Alice's sessions made through the API: one with messages, one with files (one deleted). */
let chat: string;
let withFiles: string;
/** What alice sees, loaded from her sessions, before the first summary was written. */
let baseline: View;

interface View {
  listing: Array<Record<string, unknown>>;
  usage: Record<string, unknown>;
  files: Array<Record<string, unknown>>;
}

async function start(): Promise<void> {
  t = await startTestApp(ENV, { storage: t.storage, logger: log.logger });
  running = true;
}

/** Stops the app as the process does on SIGTERM: the backend writes its summaries, then gives the lock up. */
async function stop(): Promise<void> {
  running = false;
  await t.stop();
}

const paths = () => new DataPaths(t.dataDir);
const summaryFile = (userId = 'alice') => paths().summaryFile(userId);
const sessionDir = (sessionId: string, userId = 'alice') => paths().sessionDir(userId, sessionId);
const exists = (file: string) =>
  lstat(file).then(
    () => true,
    () => false,
  );

/** `count` sessions written straight to disk as the service writes them, for a large user in a moment. */
async function seed(userId: string, count: number): Promise<string[]> {
  await mkdir(paths().userDir(userId), { recursive: true });
  const base = Date.parse('2026-01-01T00:00:00.000Z');
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    const at = new Date(base + i * 1000).toISOString();
    await mkdir(sessionDir(id, userId));
    await writeFile(path.join(sessionDir(id, userId), 'session.json'), JSON.stringify({ id, title: `session ${i}`, createdAt: at, updatedAt: at, version: 1, state: { i } }));
    ids.push(id);
  }
  return ids;
}

function as(userId: string) {
  const auth = bearer(t.token(userId));
  return {
    get: (route: string) => request(t.app).get(route).set(auth),
    post: (route: string, body: object) => request(t.app).post(route).set(auth).send(body),
    patch: (route: string, body: object) => request(t.app).patch(route).set(auth).send(body),
    delete: (route: string) => request(t.app).delete(route).set(auth),
    upload: (route: string, ...names: string[]) => {
      const body = multipart(names.map((name) => filePart(name, 'text/plain', `bytes of ${name}`)));
      return request(t.app).post(route).set(auth).set('Content-Type', body.contentType).send(body.body);
    },
  };
}

/** Everything the index serves, listing first (the request that loads the user). */
async function view(userId = 'alice'): Promise<View> {
  const user = as(userId);
  const listing: Array<Record<string, unknown>> = [];
  for (let cursor: string | null = null; ; ) {
    const page = await user.get(`/api/v1/sessions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).expect(200);
    listing.push(...(page.body.items as Array<Record<string, unknown>>));
    cursor = page.body.nextCursor as string | null;
    if (!cursor) break;
  }
  const usage = (await user.get('/api/v1/me').expect(200)).body.usage as Record<string, unknown>;
  const listed = listing.some((s) => s.id === withFiles) && userId === 'alice';
  const files = listed ? ((await user.get(`/api/v1/sessions/${withFiles}/files`).expect(200)).body.items as Array<Record<string, unknown>>) : [];
  return { listing, usage, files };
}

/**
 * What the sessions on disk say, with no summary at all: `summaries/` is moved aside, a new
 * app loads everything from the sessions, and `summaries/` (whatever it held) is put back.
 * The app is stopped before and after.
 */
async function diskTruth(): Promise<View> {
  const summaries = paths().summariesDir;
  const aside = path.join(outside, 'summaries-aside');
  const moved = await rename(summaries, aside).then(
    () => true,
    () => false,
  );
  await start();
  const truth = await view();
  await stop();
  await rm(summaries, { recursive: true, force: true });
  if (moved) await rename(aside, summaries);
  return truth;
}

async function readSummary(userId = 'alice'): Promise<{ version: number; userId: string; sessions: Array<Record<string, unknown> & { summary: Record<string, unknown> }> }> {
  return JSON.parse(await readFile(summaryFile(userId), 'utf8'));
}

async function writeSummary(value: unknown): Promise<void> {
  await writeFile(summaryFile(), JSON.stringify(value));
}

const notUsedLines = () => log.lines().filter((l) => l.message === 'listing summary not used; loading the sessions');
const securityLines = () => log.lines().filter((l) => l.category === 'security');

beforeEach(async () => {
  log = captureLog('info');
  outside = await makeTempDir('session-vault-outside-');
  t = await startTestApp(ENV, { logger: log.logger });
  running = true;
  await seed('alice', SEEDED);
  const alice = as('alice');
  chat = (await alice.post('/api/v1/sessions', { title: 'chat', state: { n: 1 } }).expect(201)).body.id as string;
  for (const content of ['one', 'two', 'three']) await alice.post(`/api/v1/sessions/${chat}/messages`, { role: 'user', content }).expect(201);
  withFiles = (await alice.post('/api/v1/sessions', { title: 'files' }).expect(201)).body.id as string;
  await alice.upload(`/api/v1/sessions/${withFiles}/files`, 'a.txt', 'b.txt').expect(201);
  const kept = (await alice.upload(`/api/v1/sessions/${withFiles}/files`, 'c.txt').expect(201)).body.items[0].id as string;
  const gone = (await alice.get(`/api/v1/sessions/${withFiles}/files`).expect(200)).body.items[0].id as string;
  await alice.delete(`/api/v1/sessions/${withFiles}/files/${gone}`).expect(204);
  expect(kept).not.toBe(gone);
  baseline = await view();
  expect(baseline.listing).toHaveLength(SEEDED + 2);
  expect(baseline.files.map((f) => f.name)).toEqual(['b.txt', 'c.txt']);
  await stop();
  expect(await exists(summaryFile())).toBe(true);
});

afterEach(async () => {
  jest.restoreAllMocks();
  if (running) await t.close();
  else await t.storage.tearDown();
  await rm(outside, { recursive: true, force: true });
});

describe('after a graceful restart', () => {
  it('lists the same pages, usage and file lists as the sessions on disk say, from the summary', async () => {
    const summary = await readSummary();
    expect(summary).toMatchObject({ version: 1, userId: 'alice' });
    expect(summary.sessions).toHaveLength(SEEDED + 2);
    // Newest first, as listed; no message-log state in it (that scan stays lazy).
    expect(summary.sessions.map((s) => s.summary.id)).toEqual(baseline.listing.map((s) => s.id));
    expect(Object.keys(summary.sessions[0]!).sort()).toEqual(['ctimeMs', 'documentBytes', 'fileBytes', 'files', 'journal', 'logBytes', 'summary']);

    await start();
    expect(await view()).toEqual(baseline);
    expect(notUsedLines()).toEqual([]);
    // Reading messages and files changes nothing: the summary stays.
    expect((await as('alice').get(`/api/v1/sessions/${chat}/messages`).expect(200)).body.items).toHaveLength(3);
    expect(await exists(summaryFile())).toBe(true);
    await stop();
    expect(await diskTruth()).toEqual(baseline);
  });

  it('serves what the summary says when it is well formed and current: it is what the listing is built from', async () => {
    // Paired with the tests below, which show that nothing but such a summary is ever used.
    const summary = await readSummary();
    const target = summary.sessions[7]!;
    target.summary.title = 'only in the summary';
    await writeSummary(summary);
    await start();
    const served = await view();
    expect(served.listing[7]).toEqual({ ...baseline.listing[7], title: 'only in the summary' });
    // The session itself is read from its own document, as always.
    expect((await as('alice').get(`/api/v1/sessions/${target.summary.id as string}`).expect(200)).body.title).toBe(baseline.listing[7]!.title);
  });
});

describe('a summary that must not be trusted is ignored, and the listing is what the sessions on disk say', () => {
  const seededId = async (n: number) => (await readSummary()).sessions.map((s) => s.summary.id as string).filter((id) => id !== chat && id !== withFiles)[n]!;

  const cases: Array<[string, () => Promise<void>]> = [
    ['a truncated file', async () => truncate(summaryFile(), Math.floor((await stat(summaryFile())).size / 2))],
    ['garbage bytes', () => writeFile(summaryFile(), randomBytes(4096))],
    ['an empty file', () => writeFile(summaryFile(), '')],
    ['valid JSON of another shape', () => writeFile(summaryFile(), JSON.stringify([{ version: 1, userId: 'alice' }]))],
    ['another format version', async () => writeSummary({ ...(await readSummary()), version: 2 })],
    [
      'a field of the wrong type',
      async () => {
        const summary = await readSummary();
        summary.sessions[3]!.documentBytes = String(summary.sessions[3]!.documentBytes);
        await writeSummary(summary);
      },
    ],
    [
      'a field the format does not have',
      async () => {
        const summary = await readSummary();
        summary.sessions[3]!.summary.state = { injected: true };
        await writeSummary(summary);
      },
    ],
    [
      'a session marked damaged',
      async () => {
        const summary = await readSummary();
        summary.sessions[3]!.summary.damaged = true;
        await writeSummary(summary);
      },
    ],
    [
      'file charges that disagree with the files listed',
      async () => {
        const summary = await readSummary();
        summary.sessions[3]!.fileBytes = 1;
        await writeSummary(summary);
      },
    ],
    [
      'one session twice, another missing',
      async () => {
        const summary = await readSummary();
        summary.sessions[4] = summary.sessions[3]!;
        await writeSummary(summary);
      },
    ],
    [
      "another user's summary copied over it",
      async () => {
        await seed('bob', SUMMARY_MIN_SESSIONS);
        await start();
        await view('bob');
        await stop();
        await fsp.copyFile(summaryFile('bob'), summaryFile('alice'));
      },
    ],
    [
      'a summary missing a session',
      async () => {
        const summary = await readSummary();
        summary.sessions.splice(5, 1);
        await writeSummary(summary);
      },
    ],
    [
      'a summary naming a session that was never there',
      async () => {
        const summary = await readSummary();
        summary.sessions.push({ ...summary.sessions[5]!, summary: { ...summary.sessions[5]!.summary, id: randomUUID() } });
        await writeSummary(summary);
      },
    ],
    ['a session removed while the service was stopped', async () => rm(sessionDir(await seededId(3)), { recursive: true })],
    ['a session added while the service was stopped', async () => void (await seed('alice', 1))],
    [
      'a session document replaced (by rename) while the service was stopped',
      async () => {
        const id = await seededId(4);
        const document = JSON.parse(await readFile(path.join(sessionDir(id), 'session.json'), 'utf8'));
        const staged = path.join(sessionDir(id), 'session.json.restore');
        await writeFile(staged, JSON.stringify({ ...document, title: 'restored from a backup', version: 9 }));
        await rename(staged, path.join(sessionDir(id), 'session.json'));
      },
    ],
    [
      'a message log restored into a session while the service was stopped',
      async () => {
        const id = await seededId(6);
        const line = { id: randomUUID(), seq: 1, role: 'user', content: 'restored', metadata: {}, createdAt: '2026-01-02T00:00:00.000Z' };
        await writeFile(path.join(sessionDir(id), 'messages.jsonl'), `${JSON.stringify(line)}\n`);
      },
    ],
    [
      'a symbolic link in its place, to a current summary outside the data directory',
      async () => {
        await rename(summaryFile(), path.join(outside, 'alice.json'));
        await symlink(path.join(outside, 'alice.json'), summaryFile());
      },
    ],
    [
      'a directory in its place',
      async () => {
        await rm(summaryFile());
        await mkdir(summaryFile());
      },
    ],
  ];

  it.each(cases)('%s', async (_name, corrupt) => {
    await corrupt();
    const truth = await diskTruth();
    const before = log.lines().length;
    await start();
    expect(await view()).toEqual(truth);
    const lines = log.lines().slice(before);
    expect(lines).toContainEqual(expect.objectContaining({ message: 'listing summary not used; loading the sessions', category: 'cache', userId: 'alice' }));
    expect(lines.filter((l) => l.category === 'security')).toEqual([]);
    // What was in its place is gone (a directory is never read, and left), and a current
    // summary replaces it: the next restart lists the same, from the summary.
    await stop();
    const summary = await readSummary().catch(() => null);
    if (summary) expect(summary.sessions.map((s) => s.summary.id)).toEqual(truth.listing.map((s) => s.id));
    await start();
    expect(await view()).toEqual(truth);
  });

  it('one that cannot be removed does not stop the listing; writes wait until it can be removed', async () => {
    await writeFile(summaryFile(), randomBytes(64));
    await start();
    const realUnlink = fsp.unlink;
    const unlink = jest.spyOn(fsp, 'unlink').mockImplementation(async (file) => {
      if (file === summaryFile()) throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      return realUnlink(file);
    });
    expect(await view()).toEqual(baseline);
    expect(log.lines()).toContainEqual(expect.objectContaining({ level: 'warn', category: 'cache', code: 'EACCES' }));
    await as('alice').patch(`/api/v1/sessions/${chat}`, { title: 'must not land' }).expect(500);
    unlink.mockRestore();
    await as('alice').patch(`/api/v1/sessions/${chat}`, { title: 'lands' }).expect(200);
    expect(await exists(summaryFile())).toBe(false);
  });

  it('the symbolic link is removed, never followed: its target outside is left as it was', async () => {
    const target = path.join(outside, 'alice.json');
    await rename(summaryFile(), target);
    const content = await readFile(target);
    await symlink(target, summaryFile());
    await start();
    await view();
    expect(await readFile(target)).toEqual(content);
    expect((await lstat(summaryFile()).catch(() => null))?.isSymbolicLink() ?? false).toBe(false);
  });

  it('summaries/ as a symbolic link is never followed: not read, not written, nothing outside changes', async () => {
    const elsewhere = path.join(outside, 'summaries');
    await rename(paths().summariesDir, elsewhere);
    // What it points to is a current summary, with a title that would show if it were used.
    const altered = JSON.parse(await readFile(path.join(elsewhere, 'alice.json'), 'utf8'));
    altered.sessions[0].summary.title = 'from outside';
    await writeFile(path.join(elsewhere, 'alice.json'), JSON.stringify(altered));
    await symlink(elsewhere, paths().summariesDir);
    const before = await readdir(elsewhere);
    const content = await readFile(path.join(elsewhere, 'alice.json'));
    await start();
    expect(await view()).toEqual(baseline);
    await as('alice').patch(`/api/v1/sessions/${chat}`, { title: 'changed' }).expect(200);
    await stop();
    expect(await readdir(elsewhere)).toEqual(before);
    expect(await readFile(path.join(elsewhere, 'alice.json'))).toEqual(content);
    expect(await readlink(paths().summariesDir)).toBe(elsewhere);
    expect(securityLines()).toEqual([]);
  });
});

describe('a write after a restart from the summary', () => {
  const writes: Array<[string, () => Promise<unknown>]> = [
    ['a PATCH', () => as('alice').patch(`/api/v1/sessions/${chat}`, { title: 'renamed' }).expect(200)],
    ['a message appended', () => as('alice').post(`/api/v1/sessions/${chat}/messages`, { role: 'assistant', content: 'four' }).expect(201)],
    ['a session created', () => as('alice').post('/api/v1/sessions', { title: 'new' }).expect(201)],
    ['a session deleted', () => as('alice').delete(`/api/v1/sessions/${chat}`).expect(204)],
    ['a file uploaded', () => as('alice').upload(`/api/v1/sessions/${withFiles}/files`, 'd.txt').expect(201)],
    ['a file deleted', async () => as('alice').delete(`/api/v1/sessions/${withFiles}/files/${baseline.files[0]!.id as string}`).expect(204)],
  ];

  it.each(writes)('%s removes it before the change, and the next stop writes the new truth', async (_name, write) => {
    await start();
    expect(await view()).toEqual(baseline);
    await write();
    expect(await exists(summaryFile())).toBe(false);
    await stop();
    expect(await exists(summaryFile())).toBe(true);
    const truth = await diskTruth();
    expect(truth).not.toEqual(baseline);
    await start();
    expect(await view()).toEqual(truth);
    expect(notUsedLines()).toEqual([]);
  });

  it('a write racing the summary written in the background after a load from the sessions is never lost to it', async () => {
    await rm(summaryFile());
    await start();
    // The listing loads alice from her sessions, which starts a summary in the background;
    // the append (to an existing log: the directory's ctime stays) waits for that load and
    // lands while the summary is being written.
    await Promise.all([
      as('alice').get('/api/v1/sessions?limit=1').expect(200),
      as('alice').post(`/api/v1/sessions/${chat}/messages`, { role: 'assistant', content: 'four' }).expect(201),
    ]);
    await stop();
    const truth = await diskTruth();
    expect(truth.usage).not.toEqual(baseline.usage);
    await start();
    expect(await view()).toEqual(truth);
  });

  it('deleting all of the user\'s data removes it too, and none is written for no sessions', async () => {
    await start();
    await view();
    await as('alice').delete('/api/v1/me').expect(204);
    expect(await exists(summaryFile())).toBe(false);
    await stop();
    expect(await exists(summaryFile())).toBe(false);
    await start();
    expect((await view()).listing).toEqual([]);
  });

  it('is refused, and changes nothing, when the summary cannot be removed first', async () => {
    await start();
    await view();
    const realUnlink = fsp.unlink;
    const unlink = jest.spyOn(fsp, 'unlink').mockImplementation(async (file) => {
      if (file === summaryFile()) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      return realUnlink(file);
    });
    await as('alice').patch(`/api/v1/sessions/${chat}`, { title: 'must not land' }).expect(500);
    expect(JSON.parse(await readFile(path.join(sessionDir(chat), 'session.json'), 'utf8')).title).toBe('chat');
    expect(await exists(summaryFile())).toBe(true);
    unlink.mockRestore();
    await as('alice').patch(`/api/v1/sessions/${chat}`, { title: 'lands' }).expect(200);
    expect(await exists(summaryFile())).toBe(false);
  });

  it('a write that failed after changing the disk leaves no summary at the stop: the next start lists the disk', async () => {
    await start();
    await view();
    // The rename takes, then is reported failed (as when the directory fsync after it fails):
    // the session on disk is renamed, the index still holds the old title.
    const realRename = fsp.rename;
    const rename = jest.spyOn(fsp, 'rename').mockImplementation(async (from, to) => {
      await realRename(from, to);
      if (to === path.join(sessionDir(chat), 'session.json')) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    });
    try {
      await as('alice').patch(`/api/v1/sessions/${chat}`, { title: 'on disk only' }).expect(500);
    } finally {
      rename.mockRestore();
    }
    expect(JSON.parse(await readFile(path.join(sessionDir(chat), 'session.json'), 'utf8')).title).toBe('on disk only');
    await stop();
    expect(await exists(summaryFile())).toBe(false);
    const truth = await diskTruth();
    expect(truth.listing.some((s) => s.title === 'on disk only')).toBe(true);
    await start();
    expect(await view()).toEqual(truth);
  });

  it('a torn message-log tail cut when the log is first read removes it before the cut', async () => {
    // Appended in place while stopped: the session directory's ctime does not change, so
    // the summary still counts as current, and it counts the torn bytes the log holds.
    await appendFile(path.join(sessionDir(chat), 'messages.jsonl'), '{"id":"half a line');
    await start();
    const served = await view();
    expect(served.listing).toEqual(baseline.listing);
    expect(await exists(summaryFile())).toBe(true);
    expect((await as('alice').get(`/api/v1/sessions/${chat}/messages`).expect(200)).body.items).toHaveLength(3);
    expect(await exists(summaryFile())).toBe(false);
    expect((await as('alice').get('/api/v1/me').expect(200)).body.usage).toEqual(baseline.usage);
    await stop();
    expect(await diskTruth()).toEqual(baseline);
  });
});

describe('who gets a summary', () => {
  it('a user below the threshold gets none; at the threshold, one', async () => {
    await seed('carol', SUMMARY_MIN_SESSIONS - 1);
    await start();
    await view('carol');
    await stop();
    expect(await exists(summaryFile('carol'))).toBe(false);
    await start();
    await as('carol').post('/api/v1/sessions', { title: 'one more' }).expect(201);
    await stop();
    expect((await readSummary('carol')).sessions).toHaveLength(SUMMARY_MIN_SESSIONS);
  });

  it('a user with a damaged session gets none', async () => {
    const [damaged] = await seed('dave', SUMMARY_MIN_SESSIONS + 1);
    await truncate(path.join(sessionDir(damaged!, 'dave'), 'session.json'), 10);
    await start();
    expect((await view('dave')).listing).toContainEqual(expect.objectContaining({ id: damaged, damaged: true }));
    await stop();
    expect(await exists(summaryFile('dave'))).toBe(false);
  });

  it('a session found damaged while serving removes the summary that listed it as sound', async () => {
    // Cut in place while stopped: the directory's ctime is unchanged, the summary still current.
    await truncate(path.join(sessionDir(chat), 'session.json'), 10);
    await start();
    expect((await view()).listing).toEqual(baseline.listing);
    await as('alice').get(`/api/v1/sessions/${chat}`).expect(500);
    await waitFor(() => exists(summaryFile()), (present) => !present, 'the summary removed');
    await stop();
    expect(await exists(summaryFile())).toBe(false);
    await start();
    expect((await view()).listing).toContainEqual(expect.objectContaining({ id: chat, damaged: true }));
  });
});

describe('the rest of the data directory', () => {
  it('the legacy cleanup leaves summaries/ alone, without a warning', async () => {
    const report = await cleanLegacyData(paths(), 'delete');
    expect(report.warnings).toEqual([]);
    expect(report.removed).toEqual([]);
    expect(await exists(summaryFile())).toBe(true);
  });

  it('check-data counts summaries/ as part of the layout, and --repair removes the summaries before it repairs anything', async () => {
    const checked = await checkData(paths(), { repair: false, now: new Date() });
    expect(checked.findings).toEqual([expect.objectContaining({ kind: 'listing-summary', path: 'summaries', outcome: 'info' })]);
    expect(checked.clean).toBe(true);
    expect(await exists(summaryFile())).toBe(true);

    // A torn tail cut in place does not change the session directory's ctime: the summary
    // would still count as current, with the torn bytes in its usage.
    await appendFile(path.join(sessionDir(chat), 'messages.jsonl'), '{"torn');
    await writeFile(path.join(paths().summariesDir, 'notes.txt'), 'not a summary');
    const repaired = await checkData(paths(), { repair: true, now: new Date() });
    expect(repaired.findings.map((f) => [f.kind, f.path, f.outcome])).toEqual([
      ['torn-log-tail', `sessions/alice/${chat}/messages.jsonl`, 'repaired'],
      ['listing-summary', 'summaries', 'info'],
      ['stray-entry', 'summaries/notes.txt', 'repaired'],
    ]);
    expect(await readdir(paths().summariesDir)).toEqual([]);
    await start();
    expect(await view()).toEqual(baseline);
  });
});
