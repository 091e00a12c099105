/**
 * One process owns a data directory. The owner holds an exclusive advisory lock on
 * `<DATA_DIR>/.lock` for as long as it runs; a second service or `check-data` on the same
 * directory is refused before it touches anything (staging, legacy cleanup, repairs).
 *
 * The lock belongs to an open file description (Linux OFD lock, flock on BSD/macOS): the
 * kernel drops it when the owner exits, however it exits, so it can never go stale and
 * needs no timeout, PID file or clean-up. It works across containers that share a volume,
 * since they share the kernel and the inode. Removing or replacing `.lock` by hand would let
 * a second process in, so the owner keeps checking that the path is still its file.
 */
import { constants, open } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tryLock } from 'fs-native-extensions';
import { closeFd, fs, fstatFd, isErrno } from './durable-fs';

// A plain descriptor, not a FileHandle: the garbage collector closes an unreferenced
// FileHandle, and closing it would drop the lock.
const openFd = promisify(open);

export const LOCK_FILE = '.lock';

export class DataDirectoryBusy extends Error {
  constructor(readonly dataDir: string) {
    super(`${dataDir} is in use by another session-vault process (it holds ${LOCK_FILE}); stop that one first`);
    this.name = 'DataDirectoryBusy';
  }
}

/** `.lock` exists but is not a lock file (a link, a directory): a person must look at it. */
export class DataLockUnusable extends Error {
  constructor(readonly code: string) {
    super(`${LOCK_FILE} is not a regular file (${code}); remove it once no session-vault process runs on this directory`);
    this.name = 'DataLockUnusable';
  }
}

export interface DataLock {
  /** Lets another process take the directory; the kernel does the same at exit. */
  release(): Promise<void>;
  /** False once `.lock` was removed or replaced: another process could then take the directory. */
  stillHeld(): Promise<boolean>;
}

/** Takes the data directory's lock, or throws DataDirectoryBusy at once (it never waits). */
export async function lockDataDirectory(root: string): Promise<DataLock> {
  const file = path.join(root, LOCK_FILE);
  let fd: number;
  try {
    fd = await openFd(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (error) {
    if (isErrno(error, 'ELOOP', 'EISDIR')) throw new DataLockUnusable((error as NodeJS.ErrnoException).code!);
    throw error;
  }
  let held = false;
  try {
    held = tryLock(fd);
  } finally {
    if (!held) await closeFd(fd);
  }
  if (!held) throw new DataDirectoryBusy(root);
  const ours = await fstatFd(fd);
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      await closeFd(fd);
    },
    stillHeld: async () => {
      if (released) return false;
      const now = await fs.lstat(file).catch(() => null);
      return now !== null && now.ino === ours.ino && now.dev === ours.dev;
    },
  };
}
