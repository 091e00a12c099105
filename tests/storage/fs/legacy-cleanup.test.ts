import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { openDataDirectory } from '../../../src/storage/fs/data-directory';
import { cleanLegacyData } from '../../../src/storage/fs/legacy-cleanup';
import { makeTempDir } from '../../helpers/test-app';

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
  await put(path.join(dataDir, 'sessions', 'shared-legacy-0002', 'log.txt'), 'abc');
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
  it('removes legacy shared sessions, and reports count, bytes and names', async () => {
    const paths = await openDataDirectory(dataDir);
    const report = await cleanLegacyData(paths, 'delete');
    expect(report.removed).toEqual([`sessions/${legacyShared}`, 'sessions/shared-legacy-0002']);
    expect(report.count).toBe(2);
    expect(report.bytes).toBe(9 + 5 + 3);
    for (const gone of report.removed) expect(await exists(path.join(dataDir, gone))).toBe(false);
  });

  it('deletes nothing outside sessions/: old per-user bases stay, with a warning', async () => {
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(await readFile(path.join(dataDir, 'olduser', 'aaaaaaaaaaaaaaaa1111', 'data.json'), 'utf8')).toBe('{"x"}');
    expect(await readFile(path.join(dataDir, 'olduser2', 'sessions', 'bbbbbbbbbbbbbbbb2222', 'm.txt'), 'utf8')).toBe('hi');
    expect(report.warnings).toEqual(
      expect.arrayContaining([expect.stringContaining('entry olduser '), expect.stringContaining('entry olduser2 ')]),
    );
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
    expect(report.count).toBe(2);
    expect(report.bytes).toBe(17);
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
      // root, sessions/, alice/, bob/: foreign top-level directories are never read.
      expect(readdirSpy.mock.calls.length).toBeLessThanOrEqual(4);
    } finally {
      readdirSpy.mockRestore();
    }
    expect((await readdir(path.join(dataDir, 'sessions', 'alice'))).length).toBe(201);
  });
});

describe('legacy cleanup keeps everything that is not positively a legacy session', () => {
  const LITTER_FILES = ['.DS_Store', '.gitkeep', 'Thumbs.db', 'desktop.ini', '._session.json', '.nfs000000000123abcd00000001', '.session.json.swp', 'notes.txt~', '.#session.json'];

  /** A user directory as the service writes it: session directories holding session.json. */
  async function currentUser(dirName: string, sessions = 3): Promise<string[]> {
    const ids = Array.from({ length: sessions }, () => randomUUID());
    for (const id of ids) {
      await put(path.join(dataDir, 'sessions', dirName, id, 'session.json'), `{"id":"${id}"}`);
      await put(path.join(dataDir, 'sessions', dirName, id, 'messages.jsonl'), '{"seq":1}\n');
    }
    return ids;
  }

  async function sessionDocuments(dirName: string): Promise<number> {
    let count = 0;
    for (const name of await readdir(path.join(dataDir, 'sessions', dirName))) {
      if (await exists(path.join(dataDir, 'sessions', dirName, name, 'session.json'))) count += 1;
    }
    return count;
  }

  it('OS and editor litter inside a user directory never makes it a legacy session (carol keeps her sessions)', async () => {
    // `google-oauth2_7c1234567890` is a user directory name that also looks like an old session id.
    for (const user of ['carol', 'google-oauth2_7c1234567890']) {
      await currentUser(user);
      for (const litter of LITTER_FILES) await put(path.join(dataDir, 'sessions', user, litter), 'x');
      await mkdir(path.join(dataDir, 'sessions', user, 'lost+found'));
    }
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(report.removed).not.toEqual(expect.arrayContaining([expect.stringContaining('carol'), expect.stringContaining('google')]));
    expect(await sessionDocuments('carol')).toBe(3);
    expect(await sessionDocuments('google-oauth2_7c1234567890')).toBe(3);
    for (const litter of LITTER_FILES) expect(await exists(path.join(dataDir, 'sessions', 'carol', litter))).toBe(true);
    expect(report.warnings.join('\n')).not.toMatch(/carol|google/);
  });

  it('litter directly under sessions/ and inside session directories is left alone, without warnings', async () => {
    await currentUser('erin');
    for (const litter of LITTER_FILES) await put(path.join(dataDir, 'sessions', litter), 'x');
    await mkdir(path.join(dataDir, 'sessions', 'lost+found'));
    const [first] = await readdir(path.join(dataDir, 'sessions', 'erin'));
    for (const litter of LITTER_FILES) await put(path.join(dataDir, 'sessions', 'erin', first!, litter), 'x');
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    for (const litter of LITTER_FILES) {
      expect(await exists(path.join(dataDir, 'sessions', litter))).toBe(true);
      expect(await exists(path.join(dataDir, 'sessions', 'erin', first!, litter))).toBe(true);
    }
    expect(await exists(path.join(dataDir, 'sessions', 'lost+found'))).toBe(true);
    expect(await sessionDocuments('erin')).toBe(3);
    expect(report.warnings.join('\n')).not.toMatch(/DS_Store|Thumbs|desktop|lost\+found|nfs|swp|erin/);
  });

  it('a user whose id looks like a session id keeps her sessions, and a stray file beside them is only warned about', async () => {
    const userDir = randomUUID();
    await currentUser(userDir);
    await put(path.join(dataDir, 'sessions', userDir, 'notes.txt'), 'the operator left this');
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(await sessionDocuments(userDir)).toBe(3);
    expect(await readFile(path.join(dataDir, 'sessions', userDir, 'notes.txt'), 'utf8')).toBe('the operator left this');
    expect(report.warnings).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`user directory sessions/${userDir}: notes.txt`))]));
  });

  it('a user directory holding only litter is kept', async () => {
    const userDir = 'auth0_7c0123456789abcdef';
    await put(path.join(dataDir, 'sessions', userDir, '.DS_Store'), 'x');
    await put(path.join(dataDir, 'sessions', userDir, 'Thumbs.db'), 'x');
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(await exists(path.join(dataDir, 'sessions', userDir, '.DS_Store'))).toBe(true);
    expect(report.removed).not.toContain(`sessions/${userDir}`);
  });

  it('a copy of sessions/ elsewhere in the data directory is never deleted', async () => {
    const sessionId = randomUUID();
    await put(path.join(dataDir, 'backups2', sessionId, 'session.json'), '{"copy":1}');
    await put(path.join(dataDir, 'backups2', sessionId, 'messages.jsonl'), '{"seq":1}\n');
    await put(path.join(dataDir, 'sessions-copy', 'carol', sessionId, 'session.json'), '{"copy":2}');
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(await readFile(path.join(dataDir, 'backups2', sessionId, 'session.json'), 'utf8')).toBe('{"copy":1}');
    expect(await readFile(path.join(dataDir, 'sessions-copy', 'carol', sessionId, 'session.json'), 'utf8')).toBe('{"copy":2}');
    expect(report.removed.filter((r) => !r.startsWith('sessions/'))).toEqual([]);
    expect(report.warnings).toEqual(
      expect.arrayContaining([expect.stringContaining('entry backups2 '), expect.stringContaining('entry sessions-copy ')]),
    );
  });

  it('a directory with files whose name is not an old session id is left with a warning', async () => {
    await put(path.join(dataDir, 'sessions', 'exports', 'report.csv'), 'a,b');
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(await readFile(path.join(dataDir, 'sessions', 'exports', 'report.csv'), 'utf8')).toBe('a,b');
    expect(report.warnings).toEqual(expect.arrayContaining([expect.stringContaining('left unknown entry sessions/exports ')]));
  });

  it('a backup copy of user directories under sessions/ is never taken for a legacy session', async () => {
    const copy = path.join(dataDir, 'sessions', 'snapshot-2024-11-25');
    const sessionId = randomUUID();
    await put(path.join(copy, 'alice', sessionId, 'session.json'), '{"copy":true}');
    await put(path.join(copy, 'alice', sessionId, 'files', 'x'), 'bytes');
    await put(path.join(copy, 'README'), 'a copy made by hand');
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(report.removed).not.toContain('sessions/snapshot-2024-11-25');
    expect(await readFile(path.join(copy, 'alice', sessionId, 'session.json'), 'utf8')).toBe('{"copy":true}');
    expect(report.warnings).toEqual(expect.arrayContaining([expect.stringContaining('left unknown entry sessions/snapshot-2024-11-25 ')]));
  });

  it('a user directory whose sessions are symbolic links, with a stray file, is kept (links and all)', async () => {
    const userDir = path.join(dataDir, 'sessions', 'linked-user-0123456789');
    await put(path.join(userDir, '.gitkeep'), '');
    await symlink(outside, path.join(userDir, randomUUID()));
    const report = await cleanLegacyData(await openDataDirectory(dataDir), 'delete');
    expect(report.removed).not.toContain('sessions/linked-user-0123456789');
    expect(await exists(path.join(userDir, '.gitkeep'))).toBe(true);
  });
});
