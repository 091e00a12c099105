/**
 * The one switch between storage backends: `openBackend` reads the storage branch of the
 * configuration and opens that backend, with everything it must do before the server
 * listens (the filesystem's: lock, recover, legacy cleanup). The only module that imports a
 * backend folder; a new backend is a folder beside fs/ and one case here.
 */
import type { StorageConfig } from '../config';
import { securityEvent, type Logger } from '../logger';
import type { StorageEvents } from '../sessions/ports';
import { openFsStorage } from './fs/open';
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

export function openBackend(config: StorageConfig, logger: Logger): Promise<OpenStorageResult> {
  switch (config.backend) {
    case 'fs':
      return openFsStorage(config, logger, storageEvents(logger));
  }
}
