/**
 * What a storage backend offers the SessionStore. The filesystem backend is the embedded
 * default; another (PostgreSQL, object storage) can implement the same interface without a
 * router noticing. Every method takes the user id first: a backend holds many users' data,
 * the SessionStore in front of it holds exactly one user id.
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
 * is listed (with version 0 and its directory's modification time) so that it can be seen
 * and deleted, and every other operation on it answers SessionDamaged.
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

/** A stored file opened for reading; the caller must consume or close it. */
export interface OpenedFile {
  record: FileRecord;
  size: number;
  /** Streams bytes `start`..`end` inclusive (the whole file by default); closes the file at the end. */
  stream(range?: { start: number; end: number }): Readable;
  close(): Promise<void>;
}

/**
 * One multipart request's files. Parts are streamed into staging as they arrive; only
 * `commit` makes them visible, all together. `abort` (or a failed commit) leaves nothing.
 */
export interface UploadBatch {
  /** `checks` run on the bytes before they are stored; any of them may fail the part. */
  stage(
    source: NodeJS.ReadableStream,
    meta: { name: string; contentType: string },
    checks: NodeJS.ReadWriteStream[],
  ): Promise<FileRecord>;
  commit(): Promise<FileRecord[] | null>;
  abort(): Promise<void>;
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

/** Called under the user's write lock with exact usage; throws to refuse the write. */
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

export interface SessionBackend {
  createSession(userId: string, document: SessionDocument, admit: Admit): Promise<void>;
  readSession(userId: string, sessionId: string): Promise<SessionDocument | null>;
  /** Returns null when the session does not exist. `mutate` may throw to refuse. */
  updateSession(
    userId: string,
    sessionId: string,
    mutate: (current: SessionDocument) => SessionDocument,
    admit: Admit,
  ): Promise<SessionDocument | null>;
  deleteSession(userId: string, sessionId: string): Promise<boolean>;
  listSessions(
    userId: string,
    page: { after: SessionCursor | undefined; limit: number },
  ): Promise<{ items: SessionSummary[]; more: boolean }>;
  /** Assigns the next seq and appends durably; null when the session does not exist. */
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
  /**
   * Null when the session does not exist. `admitFile` is asked before each file, `admit`
   * for the file's overhead and then for every chunk received.
   */
  beginUpload(userId: string, sessionId: string, admit: Admit, admitFile: AdmitFile, now: () => Date): Promise<UploadBatch | null>;
  /** Oldest first; null when the session does not exist. */
  listFiles(
    userId: string,
    sessionId: string,
    page: { after: FileCursor | undefined; limit: number },
  ): Promise<{ items: FileRecord[]; more: boolean } | null>;
  openFile(userId: string, sessionId: string, fileId: string): Promise<OpenedFile | null>;
  deleteFile(userId: string, sessionId: string, fileId: string): Promise<boolean>;
  usage(userId: string): Promise<Usage>;
  deleteUser(userId: string): Promise<void>;
}
