/**
 * Startup work on the data directory: create it, pin its real path, make sure the
 * layout's own directories are real directories, and empty the staging area (what is
 * left there is a write or a delete that a crash interrupted, never acknowledged data).
 */
import { constants } from 'node:fs';
import path from 'node:path';
import { StorageIntegrityError } from './fs-errors';
import { ensureDirectory, fs, isErrno } from './durable-fs';
import { DataPaths } from './paths';
import { throttledProbe } from '../throttled-probe';

/**
 * Linux's pseudo filesystems by `statfs` type: views of the kernel, never storage. A data
 * directory there cannot hold data, and creating one can send `mkdir` into an endless loop
 * (under /proc/self it never returns), so they are refused before anything is made.
 */
const PSEUDO_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0xde5e81e4, 'efivarfs'],
  [0x62656570, 'configfs'],
  [0x65735543, 'fusectl'],
  [0xf97cff8c, 'selinuxfs'],
  [0x6e736673, 'nsfs'],
  [0x42494e4d, 'binfmt_misc'],
  [0x19800202, 'mqueue'],
]);

/** The data directory is (or would be made) on a pseudo filesystem. */
export class PseudoFilesystemDataDirectory extends Error {
  constructor(readonly filesystem: string) {
    super(`is on the ${filesystem} pseudo filesystem, which cannot hold data; choose a directory on a disk or volume`);
  }
}

/** Why the data directory cannot be used, as one `DATA_DIR: ...` line for startup to print. */
export function dataDirectoryProblem(error: unknown): string {
  if (error instanceof PseudoFilesystemDataDirectory) return `DATA_DIR: ${error.message}`;
  return `DATA_DIR: cannot be created or written (${(error as NodeJS.ErrnoException).code ?? 'unusable'})`;
}

/** The `statfs` type of `dir`, or of its nearest existing ancestor when it does not exist yet. */
async function filesystemTypeOf(dir: string): Promise<number | undefined> {
  for (let probe = dir; ; probe = path.dirname(probe)) {
    try {
      return (await fs.statfs(probe)).type;
    } catch (error) {
      // Not there yet: it would be made on its parent's filesystem. Anything else (a file in
      // the way, no access) is left to mkdir, which reports it.
      if (!isErrno(error, 'ENOENT') || probe === path.dirname(probe)) return undefined;
    }
  }
}

/** Creates the data directory if missing; its real path, once it is usable. */
export async function resolveDataDirectory(dataDir: string): Promise<string> {
  const pseudo = PSEUDO_FILESYSTEMS.get((await filesystemTypeOf(path.resolve(dataDir))) ?? -1);
  if (pseudo !== undefined) throw new PseudoFilesystemDataDirectory(pseudo);
  await fs.mkdir(path.resolve(dataDir), { recursive: true, mode: 0o700 });
  const root = await fs.realpath(path.resolve(dataDir));
  await fs.access(root, constants.W_OK | constants.X_OK);
  return root;
}

export async function openDataDirectory(dataDir: string): Promise<DataPaths> {
  const paths = new DataPaths(await resolveDataDirectory(dataDir));
  for (const dir of [paths.sessionsRoot, paths.staging]) {
    const stat = await fs.lstat(dir).catch(() => undefined);
    if (stat && !stat.isDirectory()) throw new StorageIntegrityError(`${path.basename(dir)} is not a directory`);
    await ensureDirectory(dir);
  }
  return paths;
}

/**
 * Removes interrupted writes and deletes. What cannot be removed (someone else's files) is
 * left, counted, and never stops startup: nothing reads staging leftovers.
 */
export async function clearStaging(paths: DataPaths): Promise<{ removed: number; left: string[] }> {
  const entries = await fs.readdir(paths.staging);
  const results = await Promise.allSettled(entries.map((name) => fs.rm(path.join(paths.staging, name), { recursive: true, force: true })));
  const left = entries.filter((_, i) => results[i]!.status === 'rejected');
  return { removed: entries.length - left.length, left };
}

/**
 * True when a file can be created, written and removed in the data directory now. The
 * probe file is removed whatever happened: a write that fails on a full disk has already
 * created it.
 */
export async function isDataDirectoryWritable(paths: DataPaths): Promise<boolean> {
  return (await probeDataDirectory(paths)) === 'writable';
}

/** Writable now; `full` (no space or quota left, which deletes can cure); or refused. */
export async function probeDataDirectory(paths: DataPaths): Promise<'writable' | 'full' | 'refused'> {
  const probe = paths.stagingEntry();
  try {
    await fs.writeFile(probe, 'ok', { flag: 'wx', mode: 0o600 });
    return 'writable';
  } catch (error) {
    return isErrno(error, 'ENOSPC', 'EDQUOT') ? 'full' : 'refused';
  } finally {
    await fs.rm(probe, { force: true }).catch(() => undefined);
  }
}

/** Readiness: the directory takes a write now, and `alsoCheck` (the lock) holds; throttled. */
export function throttledWritableProbe(paths: DataPaths, alsoCheck: () => Promise<boolean> = async () => true, intervalMs = 1000): () => Promise<boolean> {
  return throttledProbe(async () => (await Promise.all([isDataDirectoryWritable(paths), alsoCheck()])).every(Boolean), intervalMs);
}
