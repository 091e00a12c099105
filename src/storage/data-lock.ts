/**
 * One process owns a data directory. The owner holds an exclusive advisory lock on
 * `<DATA_DIR>/.lock` for as long as it runs; a second service or `check-data` on the same
 * directory is refused before it touches anything (staging, legacy cleanup, repairs).
 *
 * The lock belongs to an open file description (Linux OFD lock, flock on BSD/macOS): the
 * kernel drops it when the owner exits, however it exits, so it can never go stale and
 * needs no timeout, PID file or clean-up. It works across containers that share a volume,
 * since they share the kernel and the inode.
 */
import { constants, open } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tryLock } from 'fs-native-extensions';
import { closeFd } from './durable-fs';

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

export interface DataLock {
  /** Lets another process take the directory; the kernel does the same at exit. */
  release(): Promise<void>;
}

/** Takes the data directory's lock, or throws DataDirectoryBusy at once (it never waits). */
export async function lockDataDirectory(root: string): Promise<DataLock> {
  const fd = await openFd(path.join(root, LOCK_FILE), constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  let held = false;
  try {
    held = tryLock(fd);
  } finally {
    if (!held) await closeFd(fd);
  }
  if (!held) throw new DataDirectoryBusy(root);
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      await closeFd(fd);
    },
  };
}
