/**
 * The one switch between storage backends: `openBackend` reads the storage branch of the
 * configuration and opens that backend, with everything it must do before the server
 * listens (the filesystem's: lock, recover, legacy cleanup; PostgreSQL's: migrations, the
 * role check), and pairs a metadata backend with its blob store. The only module that
 * imports a backend folder; a new backend is a folder beside fs/ and one case here.
 */
import type { PostgresStorageConfig, StorageConfig } from '../config';
import { securityEvent, type Logger } from '../logger';
import type { StorageEvents } from '../sessions/ports';
import { FlatFsBlobStore } from './fs/flat-blob-store';
import { openFsStorage } from './fs/open';
import { openPostgresStorage, runMigrations, type PairedBlobStore } from './postgres/open';
import { S3BlobStore } from './s3/s3-blob-store';
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

export async function openBackend(config: StorageConfig, logger: Logger): Promise<OpenStorageResult> {
  switch (config.backend) {
    case 'fs':
      return openFsStorage(config, logger, storageEvents(logger));
    case 'postgres':
      return openPostgresStorage(config, logger, await openBlobStore(config));
  }
}

async function openBlobStore(config: PostgresStorageConfig): Promise<PairedBlobStore> {
  if (config.blobs.store === 'fs') {
    const blobs = new FlatFsBlobStore(config.dataDir);
    await blobs.clearStaging();
    return { blobs, ready: async () => true };
  }
  const blobs = new S3BlobStore(config.blobs.s3);
  if (config.blobs.s3.createBucket) await blobs.ensureBucket().catch(() => undefined);
  return { blobs, ready: () => blobs.ready() };
}

/** `npm run migrate`: brings a backend's schema up to date without opening it for requests. */
export async function migrateStorage(config: StorageConfig): Promise<{ ok: true; applied: string[] } | { ok: false; errors: string[] }> {
  switch (config.backend) {
    case 'fs':
      return { ok: false, errors: ['STORAGE_BACKEND: the filesystem backend has no migrations (set STORAGE_BACKEND=postgres)'] };
    case 'postgres':
      return runMigrations(config);
  }
}
