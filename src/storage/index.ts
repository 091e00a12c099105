/**
 * The one switch between storage backends: `openBackend` reads the storage branch of the
 * configuration and opens that backend, with everything it must do before the server
 * listens (the filesystem's: lock, recover, legacy cleanup; PostgreSQL's: migrations, the
 * role check), and pairs a metadata backend with its blob store. The only module that
 * imports a backend folder; a new backend is a folder beside fs/ and one case here.
 */
import type { PostgresStorageConfig, StorageConfig } from '../config';
import { securityEvent, type Logger } from '../logger';
import type { FsObserver } from '../metrics/recorder';
import type { StorageEvents } from '../sessions/ports';
import { dataDirectoryProblem, resolveDataDirectory } from './fs/data-directory';
import { FlatFsBlobStore } from './fs/flat-blob-store';
import { observeFs } from './fs/fs-observer';
import { openFsStorage } from './fs/open';
import type { PairedBlobStore } from './postgres/open';
import type { OpenStorageResult } from './opened-storage';

export type { OpenedStorage, OpenStorageResult } from './opened-storage';

/** Damage is a security event (someone or something changed stored data); a cut tail is recovery. */
function storageEvents(logger: Logger): StorageEvents {
  return {
    sessionDamaged: (userId, sessionId, what) => securityEvent(logger, 'session damaged', { userId, sessionId, what }),
    tornTailCut: (userId, sessionId, bytes) =>
      logger.warn('message log torn tail cut', { category: 'recovery', userId, sessionId, bytes }),
  };
}

/** `observer` (METRICS=on) receives the filesystem backend's durable-write, fsync and batch timings. */
export async function openBackend(config: StorageConfig, logger: Logger, observer?: FsObserver): Promise<OpenStorageResult> {
  switch (config.backend) {
    case 'fs':
      observeFs(observer);
      return openFsStorage(config, logger, storageEvents(logger));
    case 'postgres': {
      // PostgreSQL's and S3's clients are loaded only for this backend: the embedded default
      // starts without them (about half a second less).
      const { openPostgresStorage } = await import('./postgres/open.js');
      const paired = await openBlobStore(config, logger);
      if ('errors' in paired) return { ok: false, errors: paired.errors };
      const opened = await openPostgresStorage(config, logger, paired);
      if (!opened.ok) await paired.close();
      return opened;
    }
  }
}

async function openBlobStore(config: PostgresStorageConfig, logger: Logger): Promise<PairedBlobStore | { errors: string[] }> {
  if (config.blobs.store === 'fs') {
    let blobs: FlatFsBlobStore;
    try {
      blobs = new FlatFsBlobStore(await resolveDataDirectory(config.dataDir));
      await blobs.clearStaging();
    } catch (error) {
      return { errors: [dataDirectoryProblem(error)] };
    }
    return { blobs, ready: () => blobs.ready(), close: async () => undefined };
  }
  const { S3BlobStore } = await import('./s3/s3-blob-store.js');
  const blobs = new S3BlobStore(config.blobs.s3);
  // Outside production the bucket is made if missing; a store that is down now is no reason
  // not to start (readiness says 503 until it answers).
  if (config.blobs.s3.createBucket) await blobs.ensureBucket().catch(() => undefined);
  if (!(await blobs.ready())) {
    logger.warn('blob store not ready', { bucket: config.blobs.s3.bucket, detail: 'the bucket cannot be reached or does not exist; /readyz answers 503 until it does' });
  }
  return { blobs, ready: () => blobs.ready(), close: async () => blobs.close() };
}

/** `npm run migrate`: brings a backend's schema up to date without opening it for requests. */
export async function migrateStorage(config: StorageConfig): Promise<{ ok: true; applied: string[] } | { ok: false; errors: string[] }> {
  switch (config.backend) {
    case 'fs':
      return { ok: false, errors: ['STORAGE_BACKEND: the filesystem backend has no migrations (set STORAGE_BACKEND=postgres)'] };
    case 'postgres': {
      const { runMigrations } = await import('./postgres/open.js');
      return runMigrations(config);
    }
  }
}
