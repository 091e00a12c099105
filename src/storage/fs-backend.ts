/**
 * The filesystem backend: `<DATA_DIR>/sessions/<user>/<session>/` holding `session.json`
 * (the document, replaced atomically) and `messages.jsonl` (appended, fsynced before a
 * message is acknowledged).
 *
 * All writes for one user run under that user's lock, which serializes writes to a session
 * and makes quota checks exact. Reads take no lock: every write is a rename or a fsynced
 * append, so a reader sees a whole old or a whole new state. Changes to one document, and
 * appends to one log, that arrive while an earlier one is being written are group-committed:
 * applied in arrival order and made durable by one write and one fsync.
 */
import path from 'node:path';
import type {
  Admit,
  FileRecord,
  OpenedFile,
  SessionBackend,
  SessionDocument,
  SessionSummary,
  StoredMessage,
  UploadBatch,
  Usage,
} from './backend';
import {
  appendDurably,
  ensureDirectory,
  fileSize,
  fs,
  fsyncDirectory,
  isRealDirectory,
  listDirectories,
  readFileNoFollow,
  removeTreeAtomically,
  replaceFileAtomically,
  truncateFile,
  writeNewFileDurably,
} from './durable-fs';
import { DocumentCache, sessionKey } from './document-cache';
import { forEachLimited } from './for-each-limited';
import { GroupCommit, type Outcome } from './group-commit';
import { KeyedMutex } from './keyed-mutex';
import { FsUploadBatch, openBlob, type StagedFile } from './fs-upload';
import { DataPaths, FILES_DIR, FILE_LIST, MESSAGE_LOG, SESSION_DOCUMENT, isValidObjectId } from './paths';
import { SessionIndex, type IndexedSession, type MessageLogState } from './session-index';

const INDEX_LOAD_CONCURRENCY = 32;
const DEFAULT_SESSION_CACHE_BYTES = 64 * 1024 * 1024;

export interface FsBackendOptions {
  /** Memory for recently used session documents; 0 reads every session from disk. */
  sessionCacheBytes?: number;
}

interface DocumentChange {
  userId: string;
  sessionId: string;
  mutate: (current: SessionDocument) => SessionDocument;
  admit: Admit;
}

interface MessageAppend {
  userId: string;
  sessionId: string;
  build: (seq: number) => StoredMessage;
  admit: Admit;
}

/** Usage as a batch item sees it: `pending` bytes of earlier items already counted. */
function usageWithPending(usage: Usage, pending: number): Usage {
  return { sessions: usage.sessions, bytes: usage.bytes + pending };
}

/** A write that failed takes down every item of its batch that had been accepted. */
function failAccepted<R>(outcomes: Array<Outcome<R>>, error: unknown): Array<Outcome<R>> {
  return outcomes.map((o) => (o.ok ? { ok: false, error } : o));
}

function summaryOf(document: SessionDocument): SessionSummary {
  const { state: _state, ...summary } = document;
  return summary;
}

function serialize(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export class FsBackend implements SessionBackend {
  private readonly locks = new KeyedMutex();
  private readonly indexes = new Map<string, SessionIndex>();
  private readonly documents: DocumentCache;
  private readonly documentChanges = new GroupCommit<DocumentChange, SessionDocument | null>((_key, changes) =>
    this.commitDocumentChanges(changes),
  );
  private readonly messageAppends = new GroupCommit<MessageAppend, StoredMessage | null>((_key, appends) =>
    this.commitMessages(appends),
  );

  constructor(
    private readonly paths: DataPaths,
    options: FsBackendOptions = {},
  ) {
    this.documents = new DocumentCache(options.sessionCacheBytes ?? DEFAULT_SESSION_CACHE_BYTES);
  }

  async createSession(userId: string, document: SessionDocument, admit: Admit): Promise<void> {
    await this.locks.run(userId, async () => {
      const index = await this.indexFor(userId);
      const data = serialize(document);
      admit(index.usageWithReservations(), data.length);
      const userDir = this.paths.userDir(userId);
      await ensureDirectory(userDir);
      // The session directory is assembled in staging and renamed into place whole, so a
      // crash never leaves a session directory without its document.
      const staged = this.paths.stagingEntry();
      await fs.mkdir(staged, { mode: 0o700 });
      try {
        await writeNewFileDurably(path.join(staged, SESSION_DOCUMENT), data);
        await fsyncDirectory(staged);
        await fs.rename(staged, this.paths.sessionDir(userId, document.id));
      } catch (error) {
        await fs.rm(staged, { recursive: true, force: true });
        throw error;
      }
      await fsyncDirectory(userDir);
      this.documents.endWrite(userId, document.id, { document, bytes: data.length });
      index.put({
        summary: summaryOf(document),
        documentBytes: data.length,
        logBytes: 0,
        fileBytes: 0,
        log: { nextSeq: 1, committedBytes: 0 },
        files: [],
      });
    });
  }

  async readSession(userId: string, sessionId: string): Promise<SessionDocument | null> {
    const cached = this.documents.get(userId, sessionId);
    if (cached) return cached;
    const ticket = this.documents.ticket();
    const dir = this.paths.sessionDir(userId, sessionId);
    if (!(await isRealDirectory(dir))) return null;
    const data = await readFileNoFollow(path.join(dir, SESSION_DOCUMENT));
    if (!data) return null;
    const document = JSON.parse(data.toString('utf8')) as SessionDocument;
    this.documents.fill(userId, sessionId, document, data.length, ticket);
    return document;
  }

  updateSession(
    userId: string,
    sessionId: string,
    mutate: (current: SessionDocument) => SessionDocument,
    admit: Admit,
  ): Promise<SessionDocument | null> {
    return this.documentChanges.submit(sessionKey(userId, sessionId), { userId, sessionId, mutate, admit });
  }

  async deleteSession(userId: string, sessionId: string): Promise<boolean> {
    return this.locks.run(userId, async () => {
      const index = await this.indexFor(userId);
      const dir = this.paths.sessionDir(userId, sessionId);
      if (!index.get(sessionId) || !(await isRealDirectory(dir))) return false;
      this.documents.beginWrite(userId, sessionId);
      try {
        const removed = await removeTreeAtomically(dir, this.paths.stagingEntry());
        index.remove(sessionId);
        return removed;
      } finally {
        this.documents.endWrite(userId, sessionId);
      }
    });
  }

  async listSessions(userId: string, page: Parameters<SessionBackend['listSessions']>[1]) {
    const index = await this.loadedIndex(userId);
    return index.page(page.after, page.limit);
  }

  appendMessage(
    userId: string,
    sessionId: string,
    build: (seq: number) => StoredMessage,
    admit: Admit,
  ): Promise<StoredMessage | null> {
    return this.messageAppends.submit(sessionKey(userId, sessionId), { userId, sessionId, build, admit });
  }

  async listMessages(userId: string, sessionId: string, page: { afterSeq: number; limit: number }) {
    let entry = this.indexes.get(userId)?.get(sessionId);
    let log = entry?.log;
    if (!entry || !log) {
      [entry, log] = await this.locks.run(userId, async () => {
        const index = await this.indexFor(userId);
        const found = index.get(sessionId);
        return [found, found ? await this.logStateFor(userId, index, found) : undefined] as const;
      });
    }
    if (!entry || !log) return null;
    if (!(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
    const committed = log.committedBytes;
    const data = committed === 0 ? Buffer.alloc(0) : await readFileNoFollow(this.paths.sessionFile(userId, sessionId, MESSAGE_LOG));
    if (data === null) return null;
    const items: StoredMessage[] = [];
    let more = false;
    // Lines are in seq order, one per seq starting at 1, so line k holds seq k.
    let seq = 0;
    let start = 0;
    const text = data.subarray(0, committed);
    while (start < text.length) {
      const end = text.indexOf(0x0a, start);
      if (end < 0) break;
      seq += 1;
      if (seq > page.afterSeq) {
        if (items.length === page.limit) {
          more = true;
          break;
        }
        items.push(JSON.parse(text.subarray(start, end).toString('utf8')) as StoredMessage);
      }
      start = end + 1;
    }
    return { items, more };
  }

  async beginUpload(userId: string, sessionId: string, admit: Admit, now: () => Date): Promise<UploadBatch | null> {
    const index = await this.loadedIndex(userId);
    if (!index.get(sessionId) || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
    return new FsUploadBatch(this.paths, index, admit, now, (staged) => this.commitUpload(userId, sessionId, staged));
  }

  async listFiles(userId: string, sessionId: string): Promise<FileRecord[] | null> {
    const index = await this.loadedIndex(userId);
    const entry = index.get(sessionId);
    if (!entry || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
    return entry.files;
  }

  async openFile(userId: string, sessionId: string, fileId: string): Promise<OpenedFile | null> {
    const record = (await this.listFiles(userId, sessionId))?.find((f) => f.id === fileId);
    if (!record || !(await isRealDirectory(this.paths.sessionFile(userId, sessionId, FILES_DIR)))) return null;
    return openBlob(this.paths.fileBlob(userId, sessionId, fileId), record);
  }

  async deleteFile(userId: string, sessionId: string, fileId: string): Promise<boolean> {
    return this.locks.run(userId, async () => {
      const index = await this.indexFor(userId);
      const entry = index.get(sessionId);
      if (!entry || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return false;
      const files = entry.files;
      const record = files.find((f) => f.id === fileId);
      if (!record) return false;
      const remaining = files.filter((f) => f.id !== fileId);
      // The list is the truth: once it no longer names the file, the file is gone for
      // readers; the bytes are removed after.
      await this.writeFileList(userId, sessionId, remaining);
      entry.files = remaining;
      index.addFileBytes(sessionId, -record.size);
      await fs.rm(this.paths.fileBlob(userId, sessionId, fileId), { force: true });
      await fsyncDirectory(this.paths.sessionFile(userId, sessionId, FILES_DIR));
      return true;
    });
  }

  async usage(userId: string): Promise<Usage> {
    const index = await this.loadedIndex(userId);
    return index.usage();
  }

  async deleteUser(userId: string): Promise<void> {
    await this.locks.run(userId, async () => {
      const userDir = this.paths.userDir(userId);
      this.documents.dropUser(userId);
      try {
        if (await isRealDirectory(userDir)) {
          await removeTreeAtomically(userDir, this.paths.stagingEntry());
        }
      } finally {
        this.documents.dropUser(userId);
      }
      this.indexes.set(userId, new SessionIndex());
    });
  }

  /**
   * Applies a batch of changes to one document in arrival order, each on top of the one
   * before (a refused change is skipped), and writes the result once.
   */
  private commitDocumentChanges(changes: DocumentChange[]): Promise<Array<Outcome<SessionDocument | null>>> {
    const { userId, sessionId } = changes[0]!;
    return this.locks.run(userId, async () => {
      const index = await this.indexFor(userId);
      const entry = index.get(sessionId);
      let current = entry ? await this.readSession(userId, sessionId) : null;
      if (!entry || !current) return changes.map(() => ({ ok: true, value: null }));
      const outcomes: Array<Outcome<SessionDocument | null>> = [];
      let latest: { document: SessionDocument; data: Buffer } | undefined;
      for (const change of changes) {
        try {
          const next = change.mutate(current);
          const data = serialize(next);
          const stored = latest?.data.length ?? entry.documentBytes;
          change.admit(usageWithPending(index.usageWithReservations(), stored - entry.documentBytes), data.length - stored);
          current = next;
          latest = { document: next, data };
          outcomes.push({ ok: true, value: next });
        } catch (error) {
          outcomes.push({ ok: false, error });
        }
      }
      if (!latest) return outcomes;
      const target = this.paths.sessionFile(userId, sessionId, SESSION_DOCUMENT);
      this.documents.beginWrite(userId, sessionId);
      let written: { document: SessionDocument; bytes: number } | undefined;
      try {
        await replaceFileAtomically(this.paths.stagingEntry(), target, latest.data);
        written = { document: latest.document, bytes: latest.data.length };
      } catch (error) {
        return failAccepted(outcomes, error);
      } finally {
        this.documents.endWrite(userId, sessionId, written);
      }
      index.put({ ...entry, summary: summaryOf(latest.document), documentBytes: latest.data.length });
      return outcomes;
    });
  }

  /** Numbers a batch of messages for one session, appends them in one write, fsyncs once. */
  private commitMessages(appends: MessageAppend[]): Promise<Array<Outcome<StoredMessage | null>>> {
    const { userId, sessionId } = appends[0]!;
    return this.locks.run(userId, async () => {
      const index = await this.indexFor(userId);
      const entry = index.get(sessionId);
      const dir = this.paths.sessionDir(userId, sessionId);
      if (!entry || !(await isRealDirectory(dir))) return appends.map(() => ({ ok: true, value: null }));
      const log = await this.logStateFor(userId, index, entry);
      const outcomes: Array<Outcome<StoredMessage | null>> = [];
      const lines: Buffer[] = [];
      let added = 0;
      for (const append of appends) {
        try {
          const message = append.build(log.nextSeq + lines.length);
          const line = Buffer.from(`${JSON.stringify(message)}\n`, 'utf8');
          append.admit(usageWithPending(index.usageWithReservations(), added), line.length);
          lines.push(line);
          added += line.length;
          outcomes.push({ ok: true, value: message });
        } catch (error) {
          outcomes.push({ ok: false, error });
        }
      }
      if (lines.length === 0) return outcomes;
      const file = this.paths.sessionFile(userId, sessionId, MESSAGE_LOG);
      try {
        await appendDurably(file, lines.length === 1 ? lines[0]! : Buffer.concat(lines));
        // The first append creates the log file: its directory entry must be durable too.
        if (log.committedBytes === 0) await fsyncDirectory(dir);
      } catch (error) {
        // A failed append (disk full) may have written part of the batch: cut it off so the
        // log holds only acknowledged lines and the next append starts clean.
        await truncateFile(file, log.committedBytes).catch(() => undefined);
        return failAccepted(outcomes, error);
      }
      log.nextSeq += lines.length;
      log.committedBytes += added;
      index.addLogBytes(sessionId, added);
      return outcomes;
    });
  }

  /** Makes staged files visible, all together, under the user's lock. */
  private commitUpload(userId: string, sessionId: string, staged: StagedFile[]): Promise<FileRecord[] | null> {
    return this.locks.run(userId, async () => {
      const index = await this.indexFor(userId);
      const entry = index.get(sessionId);
      if (!entry || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
      const files = entry.files;
      const filesDir = this.paths.sessionFile(userId, sessionId, FILES_DIR);
      await ensureDirectory(filesDir);
      for (const file of staged) await fs.rename(file.stagingPath, this.paths.fileBlob(userId, sessionId, file.record.id));
      await fsyncDirectory(filesDir);
      // A crash before this line leaves blobs no list names; `reconciledFiles` removes them.
      const next = [...files, ...staged.map((f) => f.record)];
      await this.writeFileList(userId, sessionId, next);
      entry.files = next;
      index.addFileBytes(sessionId, staged.reduce((sum, f) => sum + f.record.size, 0));
      return staged.map((f) => f.record);
    });
  }

  private async readFileList(userId: string, sessionId: string): Promise<FileRecord[]> {
    const data = await readFileNoFollow(this.paths.sessionFile(userId, sessionId, FILE_LIST));
    return data ? (JSON.parse(data.toString('utf8')) as FileRecord[]) : [];
  }

  private async writeFileList(userId: string, sessionId: string, files: FileRecord[]): Promise<void> {
    const target = this.paths.sessionFile(userId, sessionId, FILE_LIST);
    await replaceFileAtomically(this.paths.stagingEntry(), target, JSON.stringify(files));
  }

  /**
   * A session's file list, made to agree with the bytes on disk; callers hold the user's
   * lock. Blobs the list does not name are the leftovers of a commit a crash interrupted and
   * are removed; records whose bytes are gone are dropped, so the list, downloads and usage
   * never disagree.
   */
  private async reconciledFiles(userId: string, sessionId: string): Promise<FileRecord[]> {
    const listed = await this.readFileList(userId, sessionId);
    const filesDir = this.paths.sessionFile(userId, sessionId, FILES_DIR);
    const present = new Set(await isRealDirectory(filesDir) ? await fs.readdir(filesDir) : []);
    const files = listed.filter((f) => present.has(f.id));
    const named = new Set(files.map((f) => f.id));
    for (const name of present) {
      if (!named.has(name)) await fs.rm(path.join(filesDir, name), { force: true, recursive: true });
    }
    if (files.length !== listed.length) await this.writeFileList(userId, sessionId, files);
    return files;
  }

  /** The user's index for a reader: loaded under the user's lock the first time only. */
  private async loadedIndex(userId: string): Promise<SessionIndex> {
    return this.indexes.get(userId) ?? this.locks.run(userId, () => this.indexFor(userId));
  }

  /** Loads the user's index from disk the first time; callers hold the user's lock. */
  private async indexFor(userId: string): Promise<SessionIndex> {
    const cached = this.indexes.get(userId);
    if (cached) return cached;
    const index = new SessionIndex();
    const userDir = this.paths.userDir(userId);
    if (await isRealDirectory(userDir)) {
      const sessionIds = (await listDirectories(userDir)).filter(isValidObjectId);
      await forEachLimited(sessionIds, INDEX_LOAD_CONCURRENCY, async (sessionId) => {
        // One listing says which of the session's files exist, so none is asked for in vain.
        const present = new Set(await fs.readdir(this.paths.sessionDir(userId, sessionId)));
        if (!present.has(SESSION_DOCUMENT)) return;
        const data = await readFileNoFollow(this.paths.sessionFile(userId, sessionId, SESSION_DOCUMENT));
        if (!data) return;
        const document = JSON.parse(data.toString('utf8')) as SessionDocument;
        const logBytes = present.has(MESSAGE_LOG) ? await fileSize(this.paths.sessionFile(userId, sessionId, MESSAGE_LOG)) : 0;
        const files = present.has(FILE_LIST) || present.has(FILES_DIR) ? await this.reconciledFiles(userId, sessionId) : [];
        const fileBytes = files.reduce((sum, f) => sum + f.size, 0);
        index.put({ summary: summaryOf(document), documentBytes: data.length, logBytes, fileBytes, log: undefined, files });
      });
    }
    this.indexes.set(userId, index);
    return index;
  }

  /**
   * Scans a session's log once per process. A line without its newline is the tail of an
   * append the process died in before acknowledging; it is cut off so the next append
   * starts on a clean line and seq stays dense.
   */
  private async logStateFor(userId: string, index: SessionIndex, entry: IndexedSession): Promise<MessageLogState> {
    if (entry.log) return entry.log;
    const file = this.paths.sessionFile(userId, entry.summary.id, MESSAGE_LOG);
    const data = (await readFileNoFollow(file)) ?? Buffer.alloc(0);
    const committedBytes = data.lastIndexOf(0x0a) + 1;
    let lines = 0;
    for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, i + 1)) lines += 1;
    if (committedBytes < data.length) {
      await truncateFile(file, committedBytes);
      index.addLogBytes(entry.summary.id, committedBytes - data.length);
    }
    entry.log = { nextSeq: lines + 1, committedBytes };
    return entry.log;
  }
}
