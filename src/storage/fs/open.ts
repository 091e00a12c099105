/**
 * Opening the filesystem backend, in the order that keeps data safe: take the data
 * directory's lock first (nothing in it is touched by a process that does not own it), make
 * sure it is usable, finish interrupted writes' clean-up, delete legacy data, and only then
 * hand out the backend. Closing writes the listing summaries the backend has in memory, then
 * gives the lock up: nothing is written into the directory after that.
 */
import type { FsStorageConfig } from '../../config';
import type { Logger } from '../../logger';
import type { StorageEvents } from '../../sessions/ports';
import { readOrCreateSecretFile } from '../../secret-file';
import type { OpenedStorage, OpenStorageResult } from '../opened-storage';
import { FsBlobStore } from './blob-store';
import { clearStaging, dataDirectoryProblem, openDataDirectory, probeDataDirectory, resolveDataDirectory, throttledWritableProbe } from './data-directory';
import { DataDirectoryBusy, DataLockUnusable, lockDataDirectory, type DataLock } from './data-lock';
import { withDomainErrors } from './fs-errors';
import { fsObserver } from './fs-observer';
import { FsBackend } from './fs-backend';
import { cleanLegacyData } from './legacy-cleanup';
import type { DataPaths } from './paths';

const LOGGED_NAMES = 50;

/** The opened backend, with its own class in reach for the tests and benchmark of this backend. */
export interface FsOpenedStorage extends OpenedStorage {
  readonly fsBackend: FsBackend;
}

/** The lock is part of readiness: an owner whose `.lock` was removed says so, once, and stops being ready. */
function lockWatch(lock: DataLock, logger: Logger): () => Promise<boolean> {
  let reported = false;
  return async () => {
    const held = await lock.stillHeld();
    if (!held && !reported) {
      reported = true;
      logger.error('DATA_DIR/.lock was removed or replaced while this process owns the directory: another process could start on it; restart this one');
    }
    return held;
  };
}

function unusable(error: unknown): OpenStorageResult {
  return { ok: false, errors: [dataDirectoryProblem(error)] };
}

export async function openFsStorage(config: FsStorageConfig, logger: Logger, events: StorageEvents): Promise<OpenStorageResult> {
  let lock: DataLock;
  try {
    lock = await lockDataDirectory(await resolveDataDirectory(config.dataDir));
  } catch (error) {
    if (error instanceof DataDirectoryBusy || error instanceof DataLockUnusable) return { ok: false, errors: [`DATA_DIR: ${error.message}`] };
    return unusable(error);
  }
  const opened = await openLocked(config, logger, events, lock).catch(async (error: unknown) => {
    await lock.release();
    throw error;
  });
  if (!opened.ok) await lock.release();
  return opened;
}

async function openLocked(config: FsStorageConfig, logger: Logger, events: StorageEvents, lock: DataLock): Promise<OpenStorageResult> {
  let paths: DataPaths;
  try {
    paths = await openDataDirectory(config.dataDir);
  } catch (error) {
    return unusable(error);
  }
  const writable = await probeDataDirectory(paths);
  if (writable === 'refused') return { ok: false, errors: ['DATA_DIR: is not writable'] };
  // A full disk is no reason to stay down: deletes free space, and /readyz says 503 until then.
  if (writable === 'full') logger.error('the data directory has no space left; starting anyway, not ready until it has');

  const staging = await clearStaging(paths);
  if (staging.removed > 0) logger.info('removed interrupted writes', { count: staging.removed });
  if (staging.left.length > 0) logger.warn('left staging entries it cannot remove', { count: staging.left.length, names: staging.left.slice(0, LOGGED_NAMES) });

  const cleanup = await cleanLegacyData(paths, config.legacyCleanup);
  for (const warning of cleanup.warnings) logger.warn('legacy cleanup', { category: 'cleanup', warning });
  logger.info('legacy cleanup', {
    category: 'cleanup',
    mode: cleanup.mode,
    count: cleanup.count,
    bytes: cleanup.bytes,
    names: cleanup.removed.slice(0, LOGGED_NAMES),
    more: Math.max(0, cleanup.removed.length - LOGGED_NAMES),
    durationMs: cleanup.durationMs,
  });
  fsObserver()?.legacyCleanup(cleanup.count, cleanup.durationMs / 1000);

  const backend = new FsBackend(paths, {
    sessionCacheBytes: config.sessionCacheBytes,
    indexCacheBytes: config.userIndexCacheBytes,
    events,
    logger,
  });
  const storage: FsOpenedStorage = {
    backend: withDomainErrors(backend),
    blobs: new FsBlobStore(paths),
    // Kept beside the data, so listing cursors stay valid across restarts.
    cursorKey: () => readOrCreateSecretFile(paths.cursorKey),
    ready: throttledWritableProbe(paths, lockWatch(lock, logger)),
    close: async () => {
      try {
        await backend.close();
      } finally {
        await lock.release();
      }
    },
    location: { dataDir: paths.root },
    fsBackend: backend,
  };
  return { ok: true, storage };
}
