import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { openDataDirectory } from '../../src/storage/data-directory';
import { cleanLegacyData } from '../../src/storage/legacy-cleanup';
import { makeTempDir } from '../helpers/test-app';

async function put(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}

async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(
    () => true,
    () => false,
  );
}

let dataDir: string;
let outside: string;
const legacyShared = randomUUID();
const currentSession = randomUUID();

beforeEach(async () => {
  dataDir = await makeTempDir();
  outside = await makeTempDir('session-vault-outside-');
  await put(path.join(outside, 'precious.txt'), 'keep me');
  await put(path.join(outside, 'nested', 'data.json'), '{}');

  // Legacy shared session: the session's files directly under sessions/<id>/ (9 + 5 + 3 bytes).
  await put(path.join(dataDir, 'sessions', legacyShared, 'state.json'), '{"a":"b"}');
  await put(path.join(dataDir, 'sessions', legacyShared, 'files', 'x.txt'), 'hello');
  await put(path.join(dataDir, 'sessions', 'shared-legacy-2', 'log.txt'), 'abc');
  // A link inside a legacy tree: unlinked, never followed.
  await symlink(path.join(outside, 'precious.txt'), path.join(dataDir, 'sessions', legacyShared, 'link-to-outside'));
  // Current layout: a user directory holding a session directory; an empty user directory.
  await put(path.join(dataDir, 'sessions', 'alice', currentSession, 'session.json'), '{"id":"x"}');
  await mkdir(path.join(dataDir, 'sessions', 'bob'), { recursive: true });
  // Links where directories belong: left in place, never followed.
  await symlink(outside, path.join(dataDir, 'sessions', 'mallory'));
  await symlink(outside, path.join(dataDir, 'toplink'));
  // Old per-user bases (4 + 2 bytes).
  await put(path.join(dataDir, 'olduser', 'aaaaaaaaaaaaaaaa1111', 'data.json'), '{"x"}');
  await put(path.join(dataDir, 'olduser2', 'sessions', 'bbbbbbbbbbbbbbbb2222', 'm.txt'), 'hi');
  // Foreign entries: not ours, not sessions.
  await put(path.join(dataDir, 'notes.txt'), 'operator notes');
  await put(path.join(dataDir, 'backups', 'db.tar'), 'tar');
  await put(path.join(dataDir, '2024', 'q1', 'report.csv'), 'a,b');
  await put(path.join(dataDir, 'sessions', 'README.txt'), 'foreign file');
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

describe('legacy cleanup', () => {
  it('removes legacy shared sessions and old per-user bases, and reports count, bytes and names', async () => {
    const paths = await openDataDirectory(dataDir);
    const report = await cleanLegacyData(paths, 'delete');
    expect(report.removed).toEqual([
      'olduser',
      'olduser2',
      `sessions/${legacyShared}`,
      'sessions/shared-legacy-2',
    ]);
    expect(report.count).toBe(4);
    expect(report.bytes).toBe(9 + 5 + 3 + 5 + 2);
    for (const gone of report.removed) expect(await exists(path.join(dataDir, gone))).toBe(false);
  });

  it('keeps current-layout data and foreign entries, warning about what it does not know', async () => {
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(await readFile(path.join(dataDir, 'sessions', 'alice', currentSession, 'session.json'), 'utf8')).toBe('{"id":"x"}');
    expect((await stat(path.join(dataDir, 'sessions', 'bob'))).isDirectory()).toBe(true);
    for (const kept of ['notes.txt', 'backups/db.tar', '2024/q1/report.csv', 'sessions/README.txt']) {
      expect(await exists(path.join(dataDir, kept))).toBe(true);
    }
    expect(report.warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining('notes.txt'),
        expect.stringContaining('backups'),
        expect.stringContaining('sessions/README.txt'),
        expect.stringContaining('symbolic link toplink'),
        expect.stringContaining('symbolic link sessions/mallory'),
      ]),
    );
  });

  it('never follows a symbolic link: everything outside the data dir is intact', async () => {
    await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(await readFile(path.join(outside, 'precious.txt'), 'utf8')).toBe('keep me');
    expect(await readFile(path.join(outside, 'nested', 'data.json'), 'utf8')).toBe('{}');
    expect((await fsp.lstat(path.join(dataDir, 'sessions', 'mallory'))).isSymbolicLink()).toBe(true);
    expect((await fsp.lstat(path.join(dataDir, 'toplink'))).isSymbolicLink()).toBe(true);
  });

  it('in dry-run reports the same and deletes nothing', async () => {
    const paths = await openDataDirectory(dataDir);
    const before = (await readdir(dataDir, { recursive: true })).sort();
    const report = await cleanLegacyData(paths, 'dry-run');
    expect(report.count).toBe(4);
    expect(report.bytes).toBe(24);
    expect((await readdir(dataDir, { recursive: true })).sort()).toEqual(before);
  });

  it('when off does nothing at all', async () => {
    const paths = await openDataDirectory(dataDir);
    const before = (await readdir(dataDir, { recursive: true })).sort();
    const report = await cleanLegacyData(paths, 'off');
    expect(report.count).toBe(0);
    expect((await readdir(dataDir, { recursive: true })).sort()).toEqual(before);
  });

  it('is idempotent, and a second run reads one directory per user, not one per session', async () => {
    const paths = await openDataDirectory(dataDir);
    for (let i = 0; i < 200; i++) await put(path.join(dataDir, 'sessions', 'alice', randomUUID(), 'session.json'), '{}');
    await cleanLegacyData(paths, 'delete');
    const readdirSpy = jest.spyOn(fsp, 'readdir');
    try {
      const second = await cleanLegacyData(paths, 'delete');
      expect(second.count).toBe(0);
      expect(second.bytes).toBe(0);
      // root, sessions/, alice/, bob/, and the three foreign top-level directories it classifies.
      expect(readdirSpy.mock.calls.length).toBeLessThanOrEqual(8);
    } finally {
      readdirSpy.mockRestore();
    }
    expect((await readdir(path.join(dataDir, 'sessions', 'alice'))).length).toBe(201);
  });
});
