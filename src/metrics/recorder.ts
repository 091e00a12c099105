/**
 * What the service tells its metrics, as plain calls: the app, the auth and rate-limit
 * middleware, the storage decorator and the filesystem backend's hook take this interface,
 * never prom-client, and each call site is `metrics?.x()`, so with METRICS off (no recorder)
 * nothing is measured and prom-client is never loaded.
 *
 * Every label is from a bounded set (a route pattern, a method name, a reason class): never
 * a user id, session id, file name or raw URL.
 */

/** The reasons a token is refused, in classes an operator can alert on (see auth-failure-class.ts). */
export type AuthFailureClass =
  | 'missing_token'
  | 'malformed'
  | 'expired'
  | 'not_yet_valid'
  | 'bad_signature'
  | 'bad_algorithm'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'bad_claims'
  | 'unknown_key'
  | 'keys_unavailable'
  | 'other';

/** What the filesystem backend reports through its hook (storage/fs/fs-observer.ts). */
export interface FsObserver {
  /** A file written and fsynced (a new file, or an atomic replace with its directory fsync). */
  durableWrite(seconds: number): void;
  /** The fsync of an append to a message log or file journal. */
  appendFsync(seconds: number): void;
  /** How many writes one group commit took to disk together; `queue` is `documents` or `messages`. */
  groupCommitBatch(queue: string, size: number): void;
  /** The startup's legacy cleanup: how many legacy sessions it found (removed unless dry-run) and how long it took. */
  legacyCleanup(count: number, seconds: number): void;
}

export interface MetricsRecorder extends FsObserver {
  /** One finished (or abandoned) request; `route` is the Express pattern or `(unmatched)`. */
  request(method: string, route: string, status: number, seconds: number): void;
  authFailure(reason: AuthFailureClass): void;
  rateLimited(limiter: 'ip' | 'user'): void;
  /** Bytes of files stored by uploads, or sent by downloads that completed. */
  transferred(direction: 'upload' | 'download', bytes: number): void;
  /** One call of a storage port method, e.g. `metadata.appendMessage` or `blobs.put`. */
  storageOperation(operation: string, outcome: 'ok' | 'error', seconds: number): void;
}
