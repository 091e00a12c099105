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

/** Creates the data directory if missing; its real path, once it is usable. */
export async function resolveDataDirectory(dataDir: string): Promise<string> {
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
