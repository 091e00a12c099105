/**
 * The filesystem backend's failures, and the one function that turns them into the
 * domain's errors at the backend's edge: routers and the error middleware never see an
 * errno or a path.
 */
import { InsufficientStorage, StorageFault } from '../../errors';
import type { MetadataBackend } from '../../sessions/ports';

/**
 * The data directory holds something the layout never creates (a symbolic link where a
 * directory belongs, a FIFO where a file belongs). `what` names the kind and the entry's
 * last component, never a full path.
 */
export class StorageIntegrityError extends Error {
  constructor(readonly what: string) {
    super(`storage integrity: ${what}`);
    this.name = 'StorageIntegrityError';
  }
}

/** A no-space (or no-quota) error from the filesystem: deletes can cure it. */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** What the domain is told: a full disk is a 507 that changed nothing, a foreign entry a StorageFault. */
export function toDomainError(error: unknown): unknown {
  if (error instanceof StorageIntegrityError) return new StorageFault(error.what);
  if (isDiskFull(error)) return new InsufficientStorage();
  return error;
}

/** The backend as the domain sees it: every failure translated on its way out. */
export function withDomainErrors(inner: MetadataBackend): MetadataBackend {
  const fail = (error: unknown): never => {
    throw toDomainError(error);
  };
  return {
    createSession: (userId, document, admit) => inner.createSession(userId, document, admit).catch(fail),
    readSession: (userId, sessionId) => inner.readSession(userId, sessionId).catch(fail),
    updateSession: (userId, sessionId, mutate, admit) => inner.updateSession(userId, sessionId, mutate, admit).catch(fail),
    deleteSession: (userId, sessionId) => inner.deleteSession(userId, sessionId).catch(fail),
    listSessions: (userId, page) => inner.listSessions(userId, page).catch(fail),
    appendMessage: (userId, sessionId, build, admit) => inner.appendMessage(userId, sessionId, build, admit).catch(fail),
    listMessages: (userId, sessionId, page) => inner.listMessages(userId, sessionId, page).catch(fail),
    beginUpload: (userId, sessionId, admission) => inner.beginUpload(userId, sessionId, admission).catch(fail),
    listFiles: (userId, sessionId, page) => inner.listFiles(userId, sessionId, page).catch(fail),
    findFile: (userId, sessionId, fileId) => inner.findFile(userId, sessionId, fileId).catch(fail),
    deleteFile: (userId, sessionId, fileId) => inner.deleteFile(userId, sessionId, fileId).catch(fail),
    usage: (userId) => inner.usage(userId).catch(fail),
    deleteUser: (userId) => inner.deleteUser(userId).catch(fail),
  };
}
