/**
 * `check-data` on data directories the test builds by hand, byte for byte in the formats the
 * filesystem backend writes (session.json, messages.jsonl, files.json, files.jsonl, files/<id>), then
 * damages. Each test checks the report and what --repair did to the tree; the last group
 * runs the CLI as a real process for exit codes, --json and the lock.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, readdir, readlink, realpath, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { FILE_OVERHEAD_BYTES } from '../../../src/sessions/ports';
import { checkData, quarantineStamp, type DataCheckReport, type Finding } from '../../../src/storage/fs/data-check';
import { lockDataDirectory } from '../../../src/storage/fs/data-lock';
import { DataPaths, userDirectoryName } from '../../../src/storage/fs/paths';
import { itIf, missingRoot } from '../../helpers/prerequisite';
import { makeTempDir } from '../../helpers/test-app';

const run = promisify(execFile);
const TSX = path.join('node_modules', '.bin', 'tsx');
const CLI = path.join('src', 'cli', 'check-data.ts');
const TWO_HOURS_AGO = new Date(Date.now() - 2 * 60 * 60 * 1000);

let dataDir: string;
let outside: string;

beforeEach(async () => {
  dataDir = await realpath(await makeTempDir());
  outside = await makeTempDir('session-vault-outside-');
  await writeFile(path.join(outside, 'precious.txt'), 'keep me');
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

// ---- building trees in the service's exact formats ------------------------------------

interface BuiltSession {
  user: string;
  id: string;
  /** Relative to dataDir. */
  dir: string;
  document: Buffer;
  log: Buffer;
  files: Array<{ id: string; bytes: Buffer }>;
  list: Buffer;
}

function documentFor(id: string, title = 'Trip plan'): Buffer {
  const at = '2026-11-20T10:00:00.000Z';
  return Buffer.from(JSON.stringify({ id, title, createdAt: at, updatedAt: at, version: 3, state: { step: 2 } }));
}

function messageLine(seq: number, content = `message ${seq}`): string {
  return `${JSON.stringify({ id: randomUUID(), seq, role: seq % 2 ? 'user' : 'assistant', content, metadata: {}, createdAt: '2026-11-20T10:00:00.000Z' })}\n`;
}

function recordFor(id: string, bytes: Buffer, name = `${id.slice(0, 8)}.txt`) {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { id, name, size: bytes.length, contentType: 'text/plain', sha256, createdAt: '2026-11-20T10:00:00.000Z' };
}

const abs = (relative: string) => path.join(dataDir, relative);

/** A session as the service leaves it: document, `messages` log lines, and committed files. */
async function buildSession(userId: string, options: { messages?: number; files?: string[]; old?: boolean } = {}): Promise<BuiltSession> {
  const id = randomUUID();
  const user = userDirectoryName(userId);
  const dir = `sessions/${user}/${id}`;
  await mkdir(abs(dir), { recursive: true, mode: 0o700 });
  const document = documentFor(id);
  await writeFile(abs(`${dir}/session.json`), document);
  let log = '';
  for (let seq = 1; seq <= (options.messages ?? 0); seq++) log += messageLine(seq);
  if (log) await writeFile(abs(`${dir}/messages.jsonl`), log);
  const files = (options.files ?? []).map((content) => ({ id: randomUUID(), bytes: Buffer.from(content) }));
  let list = Buffer.alloc(0);
  if (files.length > 0) {
    await mkdir(abs(`${dir}/files`), { mode: 0o700 });
    for (const f of files) {
      await writeFile(abs(`${dir}/files/${f.id}`), f.bytes);
      // Committed long ago, as almost every file in a real tree.
      await utimes(abs(`${dir}/files/${f.id}`), TWO_HOURS_AGO, TWO_HOURS_AGO);
    }
    list = Buffer.from(JSON.stringify(files.map((f) => recordFor(f.id, f.bytes))));
    await writeFile(abs(`${dir}/files.json`), list);
  }
  return { user, id, dir, document, log: Buffer.from(log), files, list };
}

async function exists(relative: string): Promise<boolean> {
  return lstat(abs(relative)).then(
    () => true,
    () => false,
  );
}

/** Every entry under dataDir (but the lock file) with its type and content: to prove nothing changed. */
async function snapshot(dir = dataDir, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const relative = `${prefix}${entry.name}`;
    const full = path.join(dir, entry.name);
    if (relative === '.lock') continue;
    if (entry.isSymbolicLink()) out[relative] = `link -> ${await readlink(full)}`;
    else if (entry.isDirectory()) Object.assign(out, { [relative]: 'dir' }, await snapshot(full, `${relative}/`));
    else out[relative] = `${(await stat(full)).mtimeMs}:${(await readFile(full)).toString('base64')}`;
  }
  return out;
}

function check(repair: boolean, now = new Date()): Promise<DataCheckReport> {
  return checkData(new DataPaths(dataDir), { repair, now });
}

const problems = (report: DataCheckReport) => report.findings.filter((f) => f.outcome !== 'info');
const kinds = (findings: Finding[]) => findings.map((f) => `${f.kind} ${f.path}`);

async function expectSecondRunClean(): Promise<DataCheckReport> {
  const again = await check(true);
  expect(problems(again)).toEqual([]);
  expect(again.clean).toBe(true);
  expect(again.quarantine).toBeNull();
  return again;
}

describe('the file journal (files.jsonl)', () => {
  /** Moves a session's list into the journal form the service writes: a snapshot of the first file, the rest as added lines. */
  async function journalize(s: BuiltSession): Promise<void> {
    const records = s.files.map((f) => recordFor(f.id, f.bytes));
    await writeFile(abs(`${s.dir}/files.json`), JSON.stringify(records.slice(0, 1)));
    await writeFile(abs(`${s.dir}/files.jsonl`), records.slice(1).map((r) => `${JSON.stringify({ add: [r] })}\n`).join(''));
  }

  it('reads a snapshot plus journal as the service does: a healthy tree is clean, usage counts every file', async () => {
    const s = await buildSession('dana', { files: ['one', 'two', 'three'] });
    await journalize(s);
    await writeFile(abs(`${s.dir}/files.jsonl`), `${(await readFile(abs(`${s.dir}/files.jsonl`), 'utf8'))}${JSON.stringify({ del: [s.files[2]!.id] })}\n`);
    await rm(abs(`${s.dir}/files/${s.files[2]!.id}`));
    const report = await check(false);
    expect(problems(report)).toEqual([]);
    expect(report.usage[0]).toMatchObject({ files: 2, listedBytes: s.document.length + 3 + 3 });
  });

  it('cuts a torn last journal line with --repair, keeping every whole line', async () => {
    const s = await buildSession('dana', { files: ['one', 'two'] });
    await journalize(s);
    const whole = await readFile(abs(`${s.dir}/files.jsonl`));
    await writeFile(abs(`${s.dir}/files.jsonl`), Buffer.concat([whole, Buffer.from('{"add":[{"id":')]));
    const found = await check(false);
    expect(kinds(problems(found))).toEqual([`torn-log-tail ${s.dir}/files.jsonl`]);
    const repaired = await check(true);
    expect(repaired.clean).toBe(true);
    await expectSecondRunClean();
    expect(await readFile(abs(`${s.dir}/files.jsonl`))).toEqual(whole);
  });

  it('moves a session whose journal is damaged before its end into quarantine, untouched', async () => {
    const s = await buildSession('dana', { files: ['one', 'two', 'three'] });
    await journalize(s);
    const lines = (await readFile(abs(`${s.dir}/files.jsonl`), 'utf8')).split('\n');
    lines[0] = lines[0]!.slice(0, 15);
    await writeFile(abs(`${s.dir}/files.jsonl`), lines.join('\n'));
    const found = await check(false);
    expect(kinds(problems(found))).toEqual([`damaged-file-list ${s.dir}/files.json`]);
    const repaired = await check(true);
    expect(await exists(s.dir)).toBe(false);
    expect(await readFile(abs(`${repaired.quarantine}/${s.dir}/files.jsonl`), 'utf8')).toBe(lines.join('\n'));
  });

  it('dropping a record whose bytes are gone folds the journal into a new snapshot', async () => {
    const s = await buildSession('dana', { files: ['one', 'two', 'three'] });
    await journalize(s);
    await rm(abs(`${s.dir}/files/${s.files[1]!.id}`));
    expect((await check(true)).clean).toBe(true);
    await expectSecondRunClean();
    expect(await exists(`${s.dir}/files.jsonl`)).toBe(false);
    const list = JSON.parse(await readFile(abs(`${s.dir}/files.json`), 'utf8')) as Array<{ id: string }>;
    expect(list.map((f) => f.id)).toEqual([s.files[0]!.id, s.files[2]!.id]);
  });
});

// ---- the walk and the repairs ---------------------------------------------------------

describe('checking a data directory', () => {
  it('reports a healthy tree clean with each user\'s sessions and bytes, and --repair changes nothing in it', async () => {
    const a1 = await buildSession('alice', { messages: 3, files: ['hello', 'world!!'] });
    const a2 = await buildSession('alice');
    const b1 = await buildSession('Auth0|42', { messages: 1 });
    await mkdir(abs('.staging'));
    await writeFile(abs('.dev-jwt-secret'), 'x'.repeat(48));

    const report = await check(false);
    expect(report.findings).toEqual([]);
    expect(report.clean).toBe(true);
    const aliceBytes = a1.document.length + a1.log.length + 5 + 7 + a2.document.length;
    expect(report.usage).toEqual([
      {
        path: 'sessions/_41uth0_7c42',
        userId: 'Auth0|42',
        sessions: 1,
        bytes: b1.document.length + b1.log.length,
        listedBytes: b1.document.length + b1.log.length,
        files: 0,
        charged: b1.document.length + b1.log.length,
        complete: true,
      },
      // /me charges each file its bytes plus FILE_OVERHEAD_BYTES.
      { path: 'sessions/alice', userId: 'alice', sessions: 2, bytes: aliceBytes, listedBytes: aliceBytes, files: 2, charged: aliceBytes + 2 * FILE_OVERHEAD_BYTES, complete: true },
    ]);

    const before = await snapshot();
    const repaired = await check(true);
    expect(repaired.findings).toEqual([]);
    expect(repaired.quarantine).toBeNull();
    expect(await snapshot()).toEqual(before);
    expect(await exists('quarantine')).toBe(false);
  });

  it('cuts a torn last message line with --repair, keeping every acknowledged message byte for byte', async () => {
    const s = await buildSession('alice', { messages: 3 });
    const log = `${s.dir}/messages.jsonl`;
    await writeFile(abs(log), Buffer.concat([s.log, Buffer.from('{"id":"6c1f0b52-9d7a-4c3e-8f1a-')]));

    const found = await check(false);
    expect(kinds(problems(found))).toEqual([`torn-log-tail ${log}`]);
    expect(found.findings[0]).toMatchObject({ outcome: 'pending', message: expect.stringContaining('never acknowledged') });
    expect(found.clean).toBe(false);
    expect((await readFile(abs(log))).length).toBeGreaterThan(s.log.length); // a check changes nothing

    const repaired = await check(true);
    expect(repaired.findings[0]).toMatchObject({ kind: 'torn-log-tail', outcome: 'repaired' });
    expect(repaired.clean).toBe(true);
    expect(await readFile(abs(log))).toEqual(s.log);
    expect(repaired.usage[0]!.bytes).toBe(s.document.length + s.log.length);
    await expectSecondRunClean();
  });

  it('treats a last line that landed as zeros as a torn tail too', async () => {
    const s = await buildSession('alice', { messages: 2 });
    const log = `${s.dir}/messages.jsonl`;
    await writeFile(abs(log), Buffer.concat([s.log, Buffer.alloc(40), Buffer.from('\n')]));
    const repaired = await check(true);
    expect(kinds(problems(repaired))).toEqual([`torn-log-tail ${log}`]);
    expect(await readFile(abs(log))).toEqual(s.log);
  });

  it('never cuts a damaged line before the end of a log: the whole session moves into quarantine, intact', async () => {
    const s = await buildSession('alice', { messages: 1, files: ['bytes'] });
    const damaged = Buffer.from(`${messageLine(1)}{"id":"cut-in-the-middle\n${messageLine(3)}`);
    await writeFile(abs(`${s.dir}/messages.jsonl`), damaged);
    const now = new Date();

    const found = await check(false, now);
    expect(kinds(problems(found))).toEqual([`damaged-log ${s.dir}/messages.jsonl`]);
    expect(found.findings[0]!.message).toContain('line 2');
    expect(found.usage[0]!.sessions).toBe(0); // as after --repair

    const repaired = await check(true, now);
    expect(repaired.findings[0]).toMatchObject({ kind: 'damaged-log', outcome: 'repaired', action: expect.stringContaining('quarantine') });
    expect(repaired.quarantine).toBe(`quarantine/${quarantineStamp(now)}`);
    const moved = `${repaired.quarantine}/${s.dir}`;
    expect(await exists(s.dir)).toBe(false);
    expect(await readFile(abs(`${moved}/messages.jsonl`))).toEqual(damaged);
    expect(await readFile(abs(`${moved}/session.json`))).toEqual(s.document);
    expect(await readFile(abs(`${moved}/files/${s.files[0]!.id}`))).toEqual(Buffer.from('bytes'));
    expect((await stat(abs(repaired.quarantine!))).mode & 0o777).toBe(0o700);

    const again = await expectSecondRunClean();
    expect(again.findings).toEqual([expect.objectContaining({ kind: 'quarantine', outcome: 'info' })]);
  });

  it.each([
    ['cut in the middle', (id: string) => documentFor(id).subarray(0, 30), 'not valid JSON'],
    ['empty', () => Buffer.alloc(0), 'empty'],
    ['another session\'s id', () => documentFor(randomUUID()), 'is not its directory name'],
    ['the wrong shape', (id: string) => Buffer.from(JSON.stringify({ id, title: 7 })), 'shape'],
  ])('moves a session whose document is %s into quarantine, never deleting the document', async (_name, content, says) => {
    const s = await buildSession('alice', { messages: 2 });
    const bad = content(s.id);
    await writeFile(abs(`${s.dir}/session.json`), bad);
    const found = await check(false);
    expect(kinds(problems(found))).toEqual([`damaged-document ${s.dir}/session.json`]);
    expect(found.findings[0]!.message).toContain(says);

    const repaired = await check(true);
    expect(repaired.clean).toBe(true);
    const moved = `${repaired.quarantine}/${s.dir}`;
    expect(await readFile(abs(`${moved}/session.json`))).toEqual(bad);
    expect(await readFile(abs(`${moved}/messages.jsonl`))).toEqual(s.log);
    await expectSecondRunClean();
  });

  it('moves a session directory without a document into quarantine, with whatever else is in it', async () => {
    const s = await buildSession('alice', { messages: 2 });
    await rm(abs(`${s.dir}/session.json`));
    await writeFile(abs(`${s.dir}/session.json.bak`), 'an operator\'s copy');
    const repaired = await check(true);
    expect(kinds(problems(repaired))).toEqual([`damaged-document ${s.dir}/session.json`, `stray-entry ${s.dir}/session.json.bak`]);
    expect(problems(repaired).every((f) => f.outcome === 'repaired' && f.action.includes('whole session directory'))).toBe(true);
    expect(repaired.summary.quarantined).toBe(1);
    expect(await readFile(abs(`${repaired.quarantine}/${s.dir}/messages.jsonl`))).toEqual(s.log);
    expect(await readFile(abs(`${repaired.quarantine}/${s.dir}/session.json.bak`), 'utf8')).toBe('an operator\'s copy');
  });

  it('reports a repair it could not make as failed, changes nothing for it, and still makes the others', async () => {
    const broken = await buildSession('alice');
    await writeFile(abs(`${broken.dir}/session.json`), '{');
    const files = await buildSession('alice', { files: ['gone', 'kept'] });
    await rm(abs(`${files.dir}/files/${files.files[0]!.id}`));
    await writeFile(abs('quarantine'), 'a file where the quarantine directory belongs');

    const repaired = await check(true);
    expect(repaired.findings.find((f) => f.kind === 'damaged-document')).toMatchObject({ outcome: 'failed', error: expect.stringContaining('not a directory') });
    expect(repaired.findings.find((f) => f.kind === 'layout')).toMatchObject({ path: 'quarantine', outcome: 'left' });
    expect(repaired.findings.find((f) => f.kind === 'missing-blob')).toMatchObject({ outcome: 'repaired' });
    expect(repaired.clean).toBe(false);
    expect(repaired.quarantine).toBeNull();
    expect(await readFile(abs(`${broken.dir}/session.json`), 'utf8')).toBe('{');
    expect(await readFile(abs('quarantine'), 'utf8')).toBe('a file where the quarantine directory belongs');
  });

  it('moves a session whose file list does not parse into quarantine, with its files', async () => {
    const s = await buildSession('alice', { files: ['one', 'two'] });
    await writeFile(abs(`${s.dir}/files.json`), s.list.subarray(0, 50));
    const found = await check(false);
    expect(kinds(problems(found))).toEqual([`damaged-file-list ${s.dir}/files.json`]);
    const repaired = await check(true);
    const moved = `${repaired.quarantine}/${s.dir}`;
    expect(await readFile(abs(`${moved}/files.json`))).toEqual(s.list.subarray(0, 50));
    for (const f of s.files) expect(await readFile(abs(`${moved}/files/${f.id}`))).toEqual(f.bytes);
    await expectSecondRunClean();
  });

  it('removes file bytes no list names once they are an hour old, and leaves younger ones for a later run', async () => {
    const s = await buildSession('alice', { files: ['listed'] });
    const oldId = randomUUID();
    const youngId = randomUUID();
    await writeFile(abs(`${s.dir}/files/${oldId}`), 'crashed commit');
    await utimes(abs(`${s.dir}/files/${oldId}`), TWO_HOURS_AGO, TWO_HOURS_AGO);
    await writeFile(abs(`${s.dir}/files/${youngId}`), 'just now');

    const found = await check(false);
    expect(found.findings.map((f) => [f.kind, f.path, f.outcome])).toEqual([
      ['usage-drift', 'sessions/alice', 'left'],
      ['unlisted-blob', `${s.dir}/files/${oldId}`, 'pending'],
      ['unlisted-blob', `${s.dir}/files/${youngId}`, 'left'],
    ].sort((a, b) => (a[1]! < b[1]! ? -1 : 1)));
    expect(found.findings.find((f) => f.kind === 'usage-drift')!.message).toBe(`the file lists claim 6 bytes, files/ holds ${6 + 14 + 8} bytes`);

    const repaired = await check(true);
    expect(repaired.findings.find((f) => f.path.endsWith(oldId))).toMatchObject({ outcome: 'repaired' });
    expect(repaired.findings.find((f) => f.path.endsWith(youngId))).toMatchObject({ outcome: 'left' });
    expect(repaired.clean).toBe(false);
    expect(await exists(`${s.dir}/files/${oldId}`)).toBe(false);
    expect(await readFile(abs(`${s.dir}/files/${youngId}`), 'utf8')).toBe('just now');
    expect(await readFile(abs(`${s.dir}/files/${s.files[0]!.id}`), 'utf8')).toBe('listed');
    expect(await readFile(abs(`${s.dir}/files.json`))).toEqual(s.list);

    // An hour later the young one is old enough.
    const later = await check(true, new Date(Date.now() + 61 * 60 * 1000));
    expect(later.clean).toBe(true);
    expect(await readdir(abs(`${s.dir}/files`))).toEqual([s.files[0]!.id]);
  });

  it('drops list entries whose bytes are gone, rewriting files.json atomically and keeping the others as they were', async () => {
    const s = await buildSession('alice', { files: ['first', 'second', 'third'] });
    await rm(abs(`${s.dir}/files/${s.files[1]!.id}`));
    const records = JSON.parse(s.list.toString('utf8')) as Array<{ id: string }>;

    const found = await check(false);
    expect(kinds(problems(found))).toEqual(['usage-drift sessions/alice', `missing-blob ${s.dir}/files.json`]);
    expect(found.findings[1]!.message).toContain(s.files[1]!.id);
    expect(await readFile(abs(`${s.dir}/files.json`))).toEqual(s.list);

    const repaired = await check(true);
    expect(repaired.findings.map((f) => f.outcome)).toEqual(['repaired', 'repaired']);
    expect(await readFile(abs(`${s.dir}/files.json`), 'utf8')).toBe(JSON.stringify([records[0], records[2]]));
    expect(await readdir(abs('.staging'))).toEqual([]);
    expect(repaired.usage[0]).toMatchObject({ bytes: s.document.length + 5 + 5, listedBytes: s.document.length + 5 + 5 });
    await expectSecondRunClean();
  });

  it('moves a file whose size differs from its record into quarantine with its bytes, and drops the record', async () => {
    const s = await buildSession('alice', { files: ['stays', 'grows'] });
    const drifted = `${s.dir}/files/${s.files[1]!.id}`;
    await writeFile(abs(drifted), 'grows, then some');
    const records = JSON.parse(s.list.toString('utf8')) as Array<{ id: string }>;

    const found = await check(false);
    expect(kinds(problems(found))).toEqual(['usage-drift sessions/alice', `size-drift ${drifted}`]);
    expect(found.findings[1]!.message).toBe('16 bytes on disk, the file list records 5');

    const repaired = await check(true);
    expect(repaired.findings.map((f) => f.outcome)).toEqual(['repaired', 'repaired']);
    expect(await exists(drifted)).toBe(false);
    expect(await readFile(abs(`${repaired.quarantine}/${drifted}`), 'utf8')).toBe('grows, then some');
    expect(await readFile(abs(`${s.dir}/files.json`), 'utf8')).toBe(JSON.stringify([records[0]]));
    await expectSecondRunClean();
  });

  it('counts usage per user as /me will after a restart, and says what the lists claim against the bytes on disk', async () => {
    const s = await buildSession('bob', { messages: 2, files: ['12345', '1234567890'] });
    await truncate(abs(`${s.dir}/files/${s.files[1]!.id}`), 4);
    const found = await check(false);
    const drift = found.findings.find((f) => f.kind === 'usage-drift')!;
    expect(drift).toMatchObject({ path: 'sessions/bob', message: 'the file lists claim 15 bytes, files/ holds 9 bytes', outcome: 'pending' });
    expect(drift.action).toContain('recomputes usage');
    // Predicted for after --repair: the drifted file is in quarantine, its record dropped.
    const expected = s.document.length + s.log.length + 5;
    expect(found.usage).toEqual([
      { path: 'sessions/bob', userId: 'bob', sessions: 1, bytes: expected, listedBytes: expected, files: 1, charged: expected + FILE_OVERHEAD_BYTES, complete: true },
    ]);
    const repaired = await check(true);
    expect(repaired.usage).toEqual(found.usage);
    expect(repaired.findings.find((f) => f.kind === 'usage-drift')!.outcome).toBe('repaired');
  });

  it('moves stray entries and symbolic links under sessions/ into quarantine as they are, never following a link', async () => {
    const s = await buildSession('alice', { files: ['mine'] });
    const strays = [
      'sessions/README.txt',
      'sessions/Alice', // no user id encodes to an upper-case name
      'sessions/mallory',
      'sessions/alice/notes.txt',
      'sessions/alice/backup',
      'sessions/alice/elsewhere',
      `${s.dir}/extra.txt`,
      `${s.dir}/outside-link`,
      `${s.dir}/files/not-an-id`,
      `${s.dir}/files/${randomUUID()}`,
    ];
    await writeFile(abs(strays[0]!), 'foreign');
    await mkdir(abs(`${strays[1]}/${randomUUID()}`), { recursive: true });
    await symlink(outside, abs(strays[2]!));
    await writeFile(abs(strays[3]!), 'notes');
    await mkdir(abs(strays[4]!));
    await symlink(outside, abs(strays[5]!));
    await writeFile(abs(strays[6]!), 'extra');
    await symlink(path.join(outside, 'precious.txt'), abs(strays[7]!));
    await writeFile(abs(strays[8]!), 'odd');
    await symlink(path.join(outside, 'precious.txt'), abs(strays[9]!));

    const found = await check(false);
    expect(problems(found).map((f) => f.path).sort()).toEqual([...strays].sort());
    for (const f of problems(found)) {
      const isLink = ['mallory', 'elsewhere', 'outside-link'].some((n) => f.path.endsWith(n)) || f.path === strays[9];
      expect(f.kind).toBe(isLink ? 'symbolic-link' : 'stray-entry');
    }

    const repaired = await check(true);
    expect(problems(repaired).every((f) => f.outcome === 'repaired')).toBe(true);
    for (const relative of strays) {
      expect(await exists(relative)).toBe(false);
      expect(await exists(`${repaired.quarantine}/${relative}`)).toBe(true);
    }
    // Links moved as links, pointing where they pointed; their targets untouched.
    expect(await readlink(abs(`${repaired.quarantine}/sessions/mallory`))).toBe(outside);
    expect((await lstat(abs(`${repaired.quarantine}/${strays[7]}`))).isSymbolicLink()).toBe(true);
    expect(await readFile(path.join(outside, 'precious.txt'), 'utf8')).toBe('keep me');
    expect(await readdir(outside)).toEqual(['precious.txt']);
    expect(await readFile(abs(`${repaired.quarantine}/sessions/alice/notes.txt`), 'utf8')).toBe('notes');
    // The session itself is untouched.
    expect(await readFile(abs(`${s.dir}/session.json`))).toEqual(s.document);
    expect(await readFile(abs(`${s.dir}/files/${s.files[0]!.id}`), 'utf8')).toBe('mine');
    await expectSecondRunClean();
  });

  it('moves a session whose document is a symbolic link into quarantine, link and all, without reading the target', async () => {
    const s = await buildSession('alice');
    await writeFile(path.join(outside, 'session.json'), documentFor(s.id));
    await rm(abs(`${s.dir}/session.json`));
    await symlink(path.join(outside, 'session.json'), abs(`${s.dir}/session.json`));
    const repaired = await check(true);
    expect(kinds(problems(repaired))).toEqual([`symbolic-link ${s.dir}/session.json`]);
    expect((await lstat(abs(`${repaired.quarantine}/${s.dir}/session.json`))).isSymbolicLink()).toBe(true);
    expect(await readFile(path.join(outside, 'session.json'))).toEqual(documentFor(s.id));
  });

  it('reports litter as litter and leaves it where it is, even with --repair', async () => {
    const s = await buildSession('alice', { files: ['x'] });
    const litter = ['.DS_Store', 'sessions/.DS_Store', 'sessions/alice/Thumbs.db', `${s.dir}/._session.json`, `${s.dir}/files/.DS_Store`];
    for (const relative of litter) await writeFile(abs(relative), 'litter');
    const repaired = await check(true);
    expect(repaired.findings.map((f) => [f.kind, f.path, f.outcome])).toEqual(litter.sort().map((p) => ['litter', p, 'info']));
    expect(repaired.clean).toBe(true);
    for (const relative of litter) expect(await readFile(abs(relative), 'utf8')).toBe('litter');
  });

  it('counts leftovers in .staging, and --repair removes them (links unlinked, not followed)', async () => {
    await buildSession('alice');
    await mkdir(abs('.staging/half-built'), { recursive: true });
    await writeFile(abs('.staging/half-built/session.json'), '{"id":');
    await writeFile(abs(`.staging/${randomUUID()}`), 'partial');
    await symlink(outside, abs('.staging/link'));
    const found = await check(false);
    expect(problems(found)).toEqual([expect.objectContaining({ kind: 'staging-leftovers', path: '.staging', message: expect.stringMatching(/^3 leftover/) })]);
    const repaired = await check(true);
    expect(repaired.findings[0]!.outcome).toBe('repaired');
    expect(await readdir(abs('.staging'))).toEqual([]);
    expect(await readdir(outside)).toEqual(['precious.txt']);
    await expectSecondRunClean();
  });

  it('leaves entries outside sessions/ alone, as information only', async () => {
    await writeFile(abs('notes.txt'), 'operator notes');
    await symlink(outside, abs('toplink'));
    const repaired = await check(true);
    expect(repaired.findings.map((f) => [f.kind, f.path, f.outcome])).toEqual([
      ['foreign-entry', 'notes.txt', 'info'],
      ['foreign-entry', 'toplink', 'info'],
    ]);
    expect(repaired.clean).toBe(true);
    expect(await readlink(abs('toplink'))).toBe(outside);
  });

  it('never follows sessions/ when it is a symbolic link, and leaves it to a person', async () => {
    await mkdir(path.join(outside, 'alice'));
    await symlink(outside, abs('sessions'));
    const repaired = await check(true);
    expect(repaired.findings).toEqual([expect.objectContaining({ kind: 'layout', path: 'sessions', outcome: 'left' })]);
    expect(repaired.usage).toEqual([]);
    expect(repaired.clean).toBe(false);
    expect(await readdir(outside)).toEqual(['alice', 'precious.txt']);
  });

  it('repairs a tree with every kind of damage at once, and a second --repair run finds nothing to repair', async () => {
    const torn = await buildSession('alice', { messages: 2 });
    await writeFile(abs(`${torn.dir}/messages.jsonl`), Buffer.concat([torn.log, Buffer.from('{"partial')]));
    const broken = await buildSession('alice', { messages: 1 });
    await writeFile(abs(`${broken.dir}/session.json`), '{');
    const files = await buildSession('Bob', { files: ['a', 'bb', 'ccc'] });
    await rm(abs(`${files.dir}/files/${files.files[0]!.id}`));
    await writeFile(abs(`${files.dir}/files/${files.files[1]!.id}`), 'drifted');
    const unlisted = randomUUID();
    await writeFile(abs(`${files.dir}/files/${unlisted}`), 'orphan');
    await utimes(abs(`${files.dir}/files/${unlisted}`), TWO_HOURS_AGO, TWO_HOURS_AGO);
    await symlink(outside, abs('sessions/alice/link'));
    await mkdir(abs('.staging'));
    await writeFile(abs('.staging/tmp'), 'x');

    const first = await check(true);
    expect(first.clean).toBe(true);
    expect(first.summary).toMatchObject({ pending: 0, left: 0, failed: 0, quarantined: 3 });
    expect(new Set(problems(first).map((f) => f.kind))).toEqual(
      new Set(['torn-log-tail', 'damaged-document', 'missing-blob', 'size-drift', 'unlisted-blob', 'usage-drift', 'symbolic-link', 'staging-leftovers']),
    );
    // No session document was deleted: each is where it was or in quarantine.
    expect(await readFile(abs(`${torn.dir}/session.json`))).toEqual(torn.document);
    expect(await readFile(abs(`${files.dir}/session.json`))).toEqual(files.document);
    expect(await readFile(abs(`${first.quarantine}/${broken.dir}/session.json`), 'utf8')).toBe('{');

    const second = await expectSecondRunClean();
    expect(second.usage.map((u) => [u.userId, u.sessions])).toEqual([
      ['Bob', 1],
      ['alice', 1],
    ]);
  });
});

// ---- the command -------------------------------------------------------------------------

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}, options: { uid?: number; gid?: number } = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(TSX, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, ...options });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run check-data', () => {
  it('exits 0 on a healthy tree, 1 when it finds damage, and 0 once --repair has fixed it', async () => {
    const s = await buildSession('alice', { messages: 2 });
    const healthy = await cli(['--data-dir', dataDir]);
    expect(healthy).toMatchObject({ code: 0, stderr: '' });
    expect(healthy.stdout).toContain('(check only, nothing changed)');
    expect(healthy.stdout).toMatch(/^usage {2}sessions\/alice \(user alice\): 1 session\(s\), \d+ bytes stored/m);
    expect(healthy.stdout.trim().split('\n').at(-1)).toMatch(/^summary: 0 problem\(s\).*nothing needs attention$/);

    await writeFile(abs(`${s.dir}/messages.jsonl`), Buffer.concat([s.log, Buffer.from('{"torn')]));
    const damaged = await cli(['--data-dir', dataDir]);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toContain(`found  torn-log-tail     ${s.dir}/messages.jsonl: 6 bytes after message seq 2`);
    expect(damaged.stdout).toContain(`--repair would cut them (truncate to ${s.log.length} bytes)`);
    expect(damaged.stdout).toMatch(/^usage {2}sessions\/alice \(user alice\), once --repair has run: 1 session\(s\)/m);
    expect(damaged.stdout).toMatch(/^summary: 1 problem\(s\): 1 --repair would fix, 0 it leaves; 0 info; needs attention$/m);

    const repaired = await cli(['--data-dir', dataDir, '--repair']);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain(`fixed  torn-log-tail     ${s.dir}/messages.jsonl`);
    expect(repaired.stdout).toMatch(/^summary: 1 problem\(s\): 1 repaired, 0 left, 0 failed; 0 info; nothing needs attention$/m);
    expect(await readFile(abs(`${s.dir}/messages.jsonl`))).toEqual(s.log);
    expect((await cli(['--data-dir', dataDir, '--repair'])).code).toBe(0);
  });

  it('prints one JSON report with --json, and names the quarantine directory it filled', async () => {
    const s = await buildSession('alice');
    await writeFile(abs(`${s.dir}/session.json`), 'not json');
    const { code, stdout } = await cli(['--json', '--repair', `--data-dir=${dataDir}`]);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as DataCheckReport;
    expect(report).toMatchObject({ dataDir, mode: 'repair', clean: true, quarantine: expect.stringMatching(/^quarantine\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/) });
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'damaged-document', path: `${s.dir}/session.json`, outcome: 'repaired' })]);
    expect(await readFile(abs(`${report.quarantine}/${s.dir}/session.json`), 'utf8')).toBe('not json');
  });

  it('takes DATA_DIR from the environment, as the service does', async () => {
    const s = await buildSession('alice');
    await rm(abs(`${s.dir}/session.json`));
    const { code, stdout } = await cli(['--json'], { DATA_DIR: dataDir });
    expect(code).toBe(1);
    expect((JSON.parse(stdout) as DataCheckReport).dataDir).toBe(dataDir);
  });

  it('exits 2 on a usage error, before it touches the directory', async () => {
    for (const args of [['--fix'], ['--data-dir'], ['extra']]) {
      const { code, stderr } = await cli(args, { DATA_DIR: dataDir });
      expect(code).toBe(2);
      expect(stderr).toMatch(/^check-data: .*\nusage: /);
    }
    expect(await readdir(dataDir)).toEqual([]);
  });

  it('refuses with exit 1, and does not create it, when the data directory does not exist', async () => {
    const missing = path.join(dataDir, 'nope');
    const { code, stdout, stderr } = await cli(['--data-dir', missing, '--repair']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe(`check-data: ${missing} does not exist (set DATA_DIR or --data-dir to the service's data directory)\n`);
    expect(await exists('nope')).toBe(false);
  });

  it('refuses with exit 1 and one line naming the directory while another process holds it, touching nothing', async () => {
    await mkdir(abs('.staging'));
    await writeFile(abs('.staging/leftover'), 'x');
    const lock = await lockDataDirectory(dataDir);
    try {
      const held = await cli(['--data-dir', dataDir, '--repair']);
      expect(held.code).toBe(1);
      expect(held.stdout).toBe('');
      expect(held.stderr.trim().split('\n')).toEqual([expect.stringContaining(dataDir)]);
      expect(held.stderr).toContain('in use');
      expect(await readdir(abs('.staging'))).toEqual(['leftover']);
    } finally {
      await lock.release();
    }
    expect((await cli(['--data-dir', dataDir, '--repair'])).code).toBe(0);
  });

  it('reports an unreadable directory and skips it, without crashing', async () => {
    const readable = await buildSession('alice', { messages: 1 });
    const hidden = await buildSession('alice', { messages: 1 });
    await writeFile(abs(`${hidden.dir}/messages.jsonl`), Buffer.concat([hidden.log, Buffer.from('{"torn')]));
    // As root, permissions do not stop a read: run the command as nobody instead, on a
    // tree it may read everywhere but in the one directory.
    const asRoot = process.getuid?.() === 0;
    const options = asRoot ? { uid: 65534, gid: 65534 } : {};
    if (asRoot) {
      // The data directory is nobody's, as a service running as nobody would have it.
      await chown(abs(''), 65534, 65534);
      for (const dir of ['', 'sessions', 'sessions/alice', readable.dir]) await chmod(abs(dir), 0o755);
      await chmod(abs(`${readable.dir}/session.json`), 0o644);
      await chmod(abs(`${readable.dir}/messages.jsonl`), 0o644);
      await writeFile(abs('.lock'), '', { mode: 0o666 });
      await chmod(abs('.lock'), 0o666);
    }
    await chmod(abs(hidden.dir), 0o000);
    try {
      const { code, stdout } = await cli(['--json', '--data-dir', dataDir], {}, options);
      expect(code).toBe(1);
      const report = JSON.parse(stdout) as DataCheckReport;
      expect(report.findings).toEqual([expect.objectContaining({ kind: 'unreadable', path: hidden.dir, outcome: 'left', message: expect.stringContaining('EACCES') })]);
      expect(report.usage).toEqual([expect.objectContaining({ userId: 'alice', sessions: 1, complete: false })]);
    } finally {
      await chmod(abs(hidden.dir), 0o700);
    }
    expect(await fsp.readFile(abs(`${hidden.dir}/messages.jsonl`))).toEqual(Buffer.concat([hidden.log, Buffer.from('{"torn')]));
  });

  // Giving the directory to another user takes root (CI runs as root).
  itIf(missingRoot, 'refuses to run as another user than the one owning the data directory, touching nothing', async () => {
    await buildSession('alice', { messages: 1 });
    await chown(abs(''), 65534, 65534);
    const before = await snapshot();
    const { code, stderr } = await cli(['--repair', '--data-dir', dataDir]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/belongs to uid 65534; run check-data as that user/);
    expect(await snapshot()).toEqual(before);
    expect(await exists('.lock')).toBe(false);
  });
});
