/**
 * Startup work on the data directory: create it, pin its real path, make sure the
 * layout's own directories are real directories, and empty the staging area (what is
 * left there is a write or a delete that a crash interrupted, never acknowledged data).
 */
import { constants } from 'node:fs';
import path from 'node:path';
import { StorageIntegrityError } from '../errors';
import { ensureDirectory, fs } from './durable-fs';
import { DataPaths } from './paths';

export async function openDataDirectory(dataDir: string): Promise<DataPaths> {
  await fs.mkdir(path.resolve(dataDir), { recursive: true, mode: 0o700 });
  const root = await fs.realpath(path.resolve(dataDir));
  await fs.access(root, constants.W_OK | constants.X_OK);
  const paths = new DataPaths(root);
  for (const dir of [paths.sessionsRoot, paths.staging]) {
    const stat = await fs.lstat(dir).catch(() => undefined);
    if (stat && !stat.isDirectory()) throw new StorageIntegrityError(`${path.basename(dir)} is not a directory`);
    await ensureDirectory(dir);
  }
  return paths;
}

/** Removes interrupted writes and deletes; returns how many entries there were. */
export async function clearStaging(paths: DataPaths): Promise<number> {
  const entries = await fs.readdir(paths.staging);
  await Promise.all(entries.map((name) => fs.rm(path.join(paths.staging, name), { recursive: true, force: true })));
  return entries.length;
}

/** True when a file can be created, written and removed in the data directory now. */
export async function isDataDirectoryWritable(paths: DataPaths): Promise<boolean> {
  const probe = paths.stagingEntry();
  try {
    await fs.writeFile(probe, 'ok', { flag: 'wx', mode: 0o600 });
    await fs.rm(probe, { force: true });
    return true;
  } catch {
    return false;
  }
}
