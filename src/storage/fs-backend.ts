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
  StorageEvents,
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
  isErrno,
  isRealDirectory,
  listDirectories,
  readFileNoFollow,
  removeTreeAtomically,
  replaceFileAtomically,
  truncateFile,
  writeNewFileDurably,
} from './durable-fs';
import { SessionDamaged } from '../errors';
import { DocumentCache, sessionKey } from './document-cache';
import { forEachLimited } from './for-each-limited';
import { GroupCommit, type Outcome } from './group-commit';
import { KeyedMutex } from './keyed-mutex';
import { FsUploadBatch, openBlob, type StagedFile } from './fs-upload';
import { scanMessageLog } from './message-log';
import { DataPaths, FILES_DIR, FILE_LIST, MESSAGE_LOG, SESSION_DOCUMENT, isValidObjectId } from './paths';
import { SessionIndex, type IndexedSession, type MessageLogState } from './session-index';
import { parseFileList, parseMessageLine, parseSessionDocument } from './stored-shapes';

const INDEX_LOAD_CONCURRENCY = 32;
const DEFAULT_SESSION_CACHE_BYTES = 64 * 1024 * 1024;

export interface FsBackendOptions {
  /** Memory for recently used session documents; 0 reads every session from disk. */
  sessionCacheBytes?: number;
  events?: StorageEvents;
}

const NO_EVENTS: StorageEvents = { sessionDamaged: () => undefined, tornTailCut: () => undefined };

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

/**
 * A damaged session as listed: what can be known without its document. It keeps counting
 * every byte it holds, so deleting it is what gives the space back.
 */
function damagedSummary(sessionId: string, modified: Date): SessionSummary {
  const at = modified.toISOString();
  return { id: sessionId, title: '', createdAt: at, updatedAt: at, version: 0, damaged: true };
}

/** Bytes of the regular files directly in `dir` (none when it is missing). */
async function bytesIn(dir: string): Promise<number> {
  if (!(await isRealDirectory(dir))) return 0;
  let total = 0;
  for (const name of await fs.readdir(dir)) total += await fileSize(path.join(dir, name));
  return total;
}

export class FsBackend implements SessionBackend {
  private readonly locks = new KeyedMutex();
  private readonly events: StorageEvents;
  /** Sessions already reported damaged in this process: one log line each, not one per request. */
  private readonly reportedDamage = new Set<string>();
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
    this.events = options.events ?? NO_EVENTS;
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
    if (this.indexes.get(userId)?.get(sessionId)?.summary.damaged) throw new SessionDamaged();
    const cached = this.documents.get(userId, sessionId);
    if (cached) return cached;
    const ticket = this.documents.ticket();
    const dir = this.paths.sessionDir(userId, sessionId);
    if (!(await isRealDirectory(dir))) return null;
    const data = await readFileNoFollow(path.join(dir, SESSION_DOCUMENT));
    if (!data) return null;
    const document = parseSessionDocument(data, sessionId);
    if (!document) this.damaged(userId, sessionId, 'session document');
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
    if (entry?.summary.damaged) throw new SessionDamaged();
    let log = entry?.log;
    if (!entry || !log) {
      [entry, log] = await this.locks.run(userId, async () => {
        const index = await this.indexFor(userId);
        const found = this.usable(index, sessionId);
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
        const message = parseMessageLine(text.subarray(start, end), seq);
        if (!message) this.damaged(userId, sessionId, `message log line ${seq}`);
        items.push(message);
      }
      start = end + 1;
    }
    return { items, more };
  }

  async beginUpload(userId: string, sessionId: string, admit: Admit, now: () => Date): Promise<UploadBatch | null> {
    const index = await this.loadedIndex(userId);
    if (!this.usable(index, sessionId) || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
    return new FsUploadBatch(this.paths, index, admit, now, (staged) => this.commitUpload(userId, sessionId, staged));
  }

  async listFiles(userId: string, sessionId: string): Promise<FileRecord[] | null> {
    const index = await this.loadedIndex(userId);
    const entry = this.usable(index, sessionId);
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
      const entry = this.usable(index, sessionId);
      if (!entry || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return false;
      const files = entry.files;
      const record = files.find((f) => f.id === fileId);
      if (!record) return false;
      // The bytes go first, so that a delete frees space before it needs any: it works on a
      // full disk. Readers use the list in memory, which drops the file at once. A list on
      // disk that still names the file (a crash here, or no room even for the smaller list)
      // is reconciled when the user is next loaded: a record without bytes is dropped.
      await fs.rm(this.paths.fileBlob(userId, sessionId, fileId), { force: true });
      await fsyncDirectory(this.paths.sessionFile(userId, sessionId, FILES_DIR));
      entry.files = files.filter((f) => f.id !== fileId);
      index.addFileBytes(sessionId, -record.size);
      await this.writeFileListIfRoom(userId, sessionId, entry.files);
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
      const entry = this.usable(index, sessionId);
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
      const entry = this.usable(index, sessionId);
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
      const entry = this.usable(index, sessionId);
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

  /** The file list on disk; null when it is damaged. */
  private async readFileList(userId: string, sessionId: string): Promise<FileRecord[] | null> {
    const data = await readFileNoFollow(this.paths.sessionFile(userId, sessionId, FILE_LIST));
    return data ? parseFileList(data) : [];
  }

  private async writeFileList(userId: string, sessionId: string, files: FileRecord[]): Promise<void> {
    const target = this.paths.sessionFile(userId, sessionId, FILE_LIST);
    await replaceFileAtomically(this.paths.stagingEntry(), target, JSON.stringify(files));
  }

  /**
   * Writes a list that only drops records whose bytes are already gone. On a full disk it
   * stays as it was: the list in memory is right, the next write of the list brings the
   * disk up to date, and a load before that drops the same records again.
   */
  private async writeFileListIfRoom(userId: string, sessionId: string, files: FileRecord[]): Promise<void> {
    try {
      await this.writeFileList(userId, sessionId, files);
    } catch (error) {
      if (!isErrno(error, 'ENOSPC', 'EDQUOT')) throw error;
    }
  }

  /**
   * A session's file list, made to agree with the bytes on disk; callers hold the user's
   * lock. Blobs the list does not name are the leftovers of a commit a crash interrupted and
   * are removed; records whose bytes are gone are dropped, so the list, downloads and usage
   * never disagree.
   */
  private async reconciledFiles(userId: string, sessionId: string): Promise<FileRecord[] | null> {
    const listed = await this.readFileList(userId, sessionId);
    if (!listed) return null;
    const filesDir = this.paths.sessionFile(userId, sessionId, FILES_DIR);
    const present = new Set(await isRealDirectory(filesDir) ? await fs.readdir(filesDir) : []);
    const files = listed.filter((f) => present.has(f.id));
    const named = new Set(files.map((f) => f.id));
    for (const name of present) {
      if (!named.has(name)) await fs.rm(path.join(filesDir, name), { force: true, recursive: true });
    }
    if (files.length !== listed.length) await this.writeFileListIfRoom(userId, sessionId, files);
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
        const data = present.has(SESSION_DOCUMENT)
          ? await readFileNoFollow(this.paths.sessionFile(userId, sessionId, SESSION_DOCUMENT))
          : null;
        const document = data && parseSessionDocument(data, sessionId);
        const logBytes = present.has(MESSAGE_LOG) ? await fileSize(this.paths.sessionFile(userId, sessionId, MESSAGE_LOG)) : 0;
        const files = present.has(FILE_LIST) || present.has(FILES_DIR) ? await this.reconciledFiles(userId, sessionId) : [];
        if (!document || !files) {
          // One damaged session must not take the user's other sessions down with it.
          index.put(await this.damagedEntry(userId, sessionId, data?.length ?? 0, logBytes));
          this.reportDamage(userId, sessionId, document ? 'file list' : 'session document');
          return;
        }
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
    const sessionId = entry.summary.id;
    const file = this.paths.sessionFile(userId, sessionId, MESSAGE_LOG);
    const scan = await scanMessageLog(file, { everyLine: false });
    if (scan.tornBytes > 0) {
      await truncateFile(file, scan.keptBytes);
      index.addLogBytes(sessionId, -scan.tornBytes);
      this.events.tornTailCut(userId, sessionId, scan.tornBytes);
    }
    entry.log = { nextSeq: scan.lines + 1, committedBytes: scan.keptBytes };
    return entry.log;
  }

  /** The session's index entry, unless it is damaged: then nothing but a delete may touch it. */
  private usable(index: SessionIndex, sessionId: string): IndexedSession | undefined {
    const entry = index.get(sessionId);
    if (entry?.summary.damaged) throw new SessionDamaged();
    return entry;
  }

  /** Marks a session damaged (found so while serving it) and refuses the request. */
  private damaged(userId: string, sessionId: string, what: string): never {
    const entry = this.indexes.get(userId)?.get(sessionId);
    if (entry) entry.summary.damaged = true;
    this.reportDamage(userId, sessionId, what);
    throw new SessionDamaged();
  }

  private reportDamage(userId: string, sessionId: string, what: string): void {
    const key = sessionKey(userId, sessionId);
    if (this.reportedDamage.has(key)) return;
    this.reportedDamage.add(key);
    this.events.sessionDamaged(userId, sessionId, what);
  }

  private async damagedEntry(userId: string, sessionId: string, documentBytes: number, logBytes: number): Promise<IndexedSession> {
    const dir = this.paths.sessionDir(userId, sessionId);
    const { mtime } = await fs.lstat(dir);
    return {
      summary: damagedSummary(sessionId, mtime),
      documentBytes,
      logBytes,
      fileBytes: await bytesIn(this.paths.sessionFile(userId, sessionId, FILES_DIR)),
      log: undefined,
      files: [],
    };
  }
}
