/**
 * The ports: what the domain needs from storage, in two parts, as object stores are split
 * from metadata elsewhere. A `MetadataBackend` holds documents, message logs, file records,
 * usage and reservations; a `BlobStore` holds file bytes. The filesystem implements both
 * (the embedded default); a database can pair with an object store. Every method takes the
 * user id first: a backend holds many users' data, the SessionStore in front of it exactly one.
 *
 * The store decides every rule (limits, versions, quota) and creates every id and timestamp;
 * a backend only persists, and guarantees the following even when several processes share
 * it (a backend that is only ever used by one process, like the filesystem's, may keep these
 * in process memory, and must say so):
 *
 * - Exact quota: an `Admit` is called with the user's usage as it is at that moment,
 *   reservations of uploads in flight included, and the write it admits lands before any
 *   other write of the same user is admitted. Two writes can never both pass the last byte.
 * - Dense seq: a session's messages are numbered 1, 2, 3... in the order they are stored,
 *   never a gap and never a number twice, however many appends race.
 * - Version checks: `updateSession`'s `mutate` sees the document as currently stored, and
 *   nothing else changes it between that read and the write of `mutate`'s result, so a
 *   check inside `mutate` (If-Match) lets exactly one of several racing changes win.
 * - Per-chunk admission without a process-local lock: an upload holds a reservation (bytes
 *   and a place among the session's files) that the backend persists where every process
 *   sees it, grows it as bytes arrive, turns it into usage when the files are recorded, and
 *   gives it back when the upload fails. A reservation whose process died is reclaimed.
 * - Failures are the domain's: a backend translates its engine's failures that mean something
 *   to a client (no space: InsufficientStorage; unreadable data: SessionDamaged; data it never
 *   wrote: StorageFault). Anything else is a bare 500 that names no cause.
 */
import type { Readable } from 'node:stream';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface SessionDocument {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
  version: number;
  state: JsonObject;
}

/**
 * A listing's view of a session. `damaged` marks one whose document cannot be read back: it
 * is listed (with version 0 and the last time the backend knows it changed) so that it can
 * be seen and deleted, and every other operation on it answers SessionDamaged.
 */
export type SessionSummary = Omit<SessionDocument, 'state'> & { damaged?: true };

export interface StoredMessage {
  id: string;
  seq: number;
  role: string;
  content: string;
  metadata: JsonObject;
  createdAt: string;
}

export interface FileRecord {
  id: string;
  name: string;
  size: number;
  contentType: string;
  sha256: string;
  createdAt: string;
}

/**
 * What every stored file costs in quota on top of its bytes: its record, its inode and its
 * line in the file journal are not free, and a quota that ignored them would let a user fill
 * a disk with empty files.
 */
export const FILE_OVERHEAD_BYTES = 1024;

export interface Usage {
  sessions: number;
  files: number;
  /** Everything charged: documents, message logs, and each file's bytes plus FILE_OVERHEAD_BYTES. */
  bytes: number;
}

/** Position in the newest-first session listing: the last item already returned. */
export interface SessionCursor {
  updatedAt: string;
  id: string;
}

/** Position in the oldest-first file listing: the last item already returned. */
export interface FileCursor {
  createdAt: string;
  id: string;
}

/** Called with exact usage (see above) and what the write adds; throws to refuse it. */
export type Admit = (usage: Usage, addedBytes: number) => void;

/**
 * Called before a file is received, with how many files the session holds counting those
 * being received right now (so concurrent uploads cannot together pass the limit); throws
 * to refuse the file.
 */
export type AdmitFile = (filesInSession: number) => void;

/** What a backend tells the operator about, once per session and process. */
export interface StorageEvents {
  /** A session's stored data cannot be read back; `what` names the part, never its content. */
  sessionDamaged(userId: string, sessionId: string, what: string): void;
  /** The unacknowledged end of a message log, torn by a crash, was cut off. */
  tornTailCut(userId: string, sessionId: string, bytes: number): void;
}

/**
 * One multipart request's claim on the user's quota and the session's file count. Each
 * file is admitted before its first byte and grows its share as bytes arrive; `commit`
 * records all the files at once and turns what they hold into usage; `release` (or a failed
 * or refused commit) gives everything back.
 */
export interface UploadQuota {
  /**
   * Admits one more file (AdmitFile, then its FILE_OVERHEAD_BYTES through Admit); throws to
   * refuse. `fileId` is the id its bytes will be put under: a backend that outlives a process
   * remembers it, so that bytes put by a process that died before commit can be deleted.
   */
  admitFile(fileId: string): Promise<FileQuota>;
  /**
   * Records the files, whose bytes the blob store already holds, all together (all or none)
   * and gives back what was held for them. Null when the session is gone meanwhile.
   */
  commit(files: FileRecord[]): Promise<FileRecord[] | null>;
  /** Gives back everything still held; safe to call more than once and after commit. */
  release(): Promise<void>;
}

/** One file's share of an UploadQuota. */
export interface FileQuota {
  /** Holds `bytes` more for this file, through Admit; throws to refuse. */
  grow(bytes: number): void | Promise<void>;
  /** The file failed: gives back what it holds (its bytes and its place in the count). */
  cancel(): void | Promise<void>;
}

export interface MetadataBackend {
  createSession(userId: string, document: SessionDocument, admit: Admit): Promise<void>;
  readSession(userId: string, sessionId: string): Promise<SessionDocument | null>;
  /** Returns null when the session does not exist. `mutate` may throw to refuse. */
  updateSession(
    userId: string,
    sessionId: string,
    mutate: (current: SessionDocument) => SessionDocument,
    admit: Admit,
  ): Promise<SessionDocument | null>;
  /** Removes the session with its messages, file records and (now or eventually) file bytes. */
  deleteSession(userId: string, sessionId: string): Promise<boolean>;
  listSessions(
    userId: string,
    page: { after: SessionCursor | undefined; limit: number },
  ): Promise<{ items: SessionSummary[]; more: boolean }>;
  /** Assigns the next seq and stores durably; null when the session does not exist. */
  appendMessage(
    userId: string,
    sessionId: string,
    build: (seq: number) => StoredMessage,
    admit: Admit,
  ): Promise<StoredMessage | null>;
  listMessages(
    userId: string,
    sessionId: string,
    page: { afterSeq: number; limit: number },
  ): Promise<{ items: StoredMessage[]; more: boolean } | null>;
  /** Null when the session does not exist; otherwise the upload's claim on quota and file count. */
  beginUpload(userId: string, sessionId: string, admission: { admit: Admit; admitFile: AdmitFile }): Promise<UploadQuota | null>;
  /** Oldest first; null when the session does not exist. */
  listFiles(
    userId: string,
    sessionId: string,
    page: { after: FileCursor | undefined; limit: number },
  ): Promise<{ items: FileRecord[]; more: boolean } | null>;
  findFile(userId: string, sessionId: string, fileId: string): Promise<FileRecord | null>;
  /** Removes the record and (now or eventually) the bytes. */
  deleteFile(userId: string, sessionId: string, fileId: string): Promise<boolean>;
  usage(userId: string): Promise<Usage>;
  /** Everything of the user: sessions, messages, file records and (now or eventually) bytes. */
  deleteUser(userId: string): Promise<void>;
}

/** Where a file's bytes are: the file id is fresh for every upload, so a key is never reused. */
export interface BlobRef {
  userId: string;
  sessionId: string;
  fileId: string;
}

/** Stored bytes opened for reading; the caller must consume the stream or close. */
export interface OpenedBlob {
  size: number;
  /** Streams bytes `start`..`end` inclusive (the whole blob by default); closes at the end. */
  stream(range?: { start: number; end: number }): Readable;
  close(): Promise<void>;
}

export type OpenedFile = OpenedBlob & { record: FileRecord };

/**
 * File bytes. The store reaches them only through a record the metadata backend returned for
 * its own user, so the tenancy check is the metadata backend's: a blob store may key bytes by
 * the file id alone (fresh, random and never reused), and need not check `ref.userId`.
 */
export interface BlobStore {
  /**
   * Stores `source` under `ref`; resolves once the bytes are durable. A put is not visible
   * until the metadata backend commits a record naming it; a put that fails leaves nothing.
   */
  put(ref: BlobRef, source: Readable): Promise<void>;
  /** Null when there are no such bytes. */
  open(ref: BlobRef): Promise<OpenedBlob | null>;
  /**
   * Removes the bytes under `ref`, if any: those of an upload that failed or was refused,
   * and, for a backend that deletes through an outbox, those of a deleted file.
   */
  delete(ref: BlobRef): Promise<void>;
}
