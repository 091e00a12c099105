/**
 * What opening a storage backend gives the service: the two ports the domain uses, and the
 * lifecycle the entry point drives (readiness while serving, close after draining). Every
 * backend folder returns this shape; nothing outside storage/ knows which one it got.
 */
import type { BlobStore, MetadataBackend } from '../sessions/ports';

export interface OpenedStorage {
  backend: MetadataBackend;
  blobs: BlobStore;
  /** Signs listing cursors when CURSOR_SECRET is unset: a key the backend keeps, stable across restarts. */
  cursorKey(): Promise<Buffer>;
  /** True while the backend can take writes (readiness); cheap enough for a probe to poll. */
  ready(): Promise<boolean>;
  /** Gives everything up (locks, connections) once the server has drained; idempotent. */
  close(): Promise<void>;
  /** Where the data is, for the operator's log line; never a secret. */
  location: Record<string, string>;
}

/** Opened, or one line per problem for the entry point to print before exiting. */
export type OpenStorageResult = { ok: true; storage: OpenedStorage } | { ok: false; errors: string[] };
