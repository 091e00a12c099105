/**
 * The filesystem backend: `<DATA_DIR>/sessions/<user>/<session>/` holding `session.json`
 * (the document, replaced atomically), `messages.jsonl` (appended, fsynced before a
 * message is acknowledged), and the file list (`files.json` snapshot plus `files.jsonl`
 * journal, see file-journal.ts) beside `files/<id>`, the bytes.
 *
 * One process owns a data directory (data-lock.ts), so a per-user in-process lock is
 * enough to make quotas exact and seq dense here; a backend shared by several processes
 * must get the same guarantees from its database instead.
 *
 * All writes for one user run under that user's lock, which serializes writes to a session
 * and makes quota checks exact. Reads take no lock: every write is a rename or a fsynced
 * append, so a reader sees a whole old or a whole new state. Changes to one document, and
 * appends to one log, that arrive while an earlier one is being written are group-committed:
 * applied in arrival order and made durable by one write and one fsync.
 *
 * A user's index is loaded from the user's listing summary when that is current
 * (user-summary.ts), otherwise from the sessions, after which a summary is written in the
 * background; close writes one for every large user in memory that lacks one. Every path
 * that changes the disk for a user first removes the user's summary (writableIndex,
 * beforeDiskChange): a summary on disk always describes the sessions as they are.
 */
import path from 'node:path';
import type {
  Admit,
  AdmitFile,
  FileCursor,
  FileRecord,
  MetadataBackend,
  SessionDocument,
  SessionSummary,
  StorageEvents,
  StoredMessage,
  UploadQuota,
  Usage,
} from '../../sessions/ports';
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
import { AppError, SessionDamaged } from '../../errors';
import type { Logger } from '../../logger';
import { StorageIntegrityError, toDomainError } from './fs-errors';
import { DocumentCache, sessionKey } from './document-cache';
import { forEachLimited } from './for-each-limited';
import { GroupCommit, type Outcome } from './group-commit';
import { KeyedMutex } from './keyed-mutex';
import { journalLine, loadFileList, type JournalEntry } from './file-journal';
import { CHECKPOINT_LINES, readLines, scanMessageLog } from './message-log';
import { isValidObjectId } from '../../sessions/ids';
import { documentJson } from '../../sessions/document-json';
import { DataPaths, FILES_DIR, FILE_JOURNAL, FILE_LIST, MESSAGE_LOG, SESSION_DOCUMENT } from './paths';
import { SessionIndex, chargeOf, type IndexedSession, type MessageLogState } from './session-index';
import { FsUploadQuota } from './upload-quota';
import { parseMessageLine, parseSessionDocument } from './stored-shapes';
import {
  SUMMARY_MIN_SESSIONS,
  encodeUserSummary,
  installUserSummary,
  readUserSummary,
  removeUserSummary,
  stageUserSummary,
} from './user-summary';

const INDEX_LOAD_CONCURRENCY = 32;
const DEFAULT_SESSION_CACHE_BYTES = 64 * 1024 * 1024;
const DEFAULT_INDEX_CACHE_BYTES = 64 * 1024 * 1024;
/** The journal is folded into a new snapshot once it has more lines than this, or than files. */
const JOURNAL_MIN_LINES = 64;
/**
 * How long closing spends writing the summaries cached indexes lack: past it, the rest are
 * left for the next start to rebuild, so a stop stays well within an orchestrator's grace
 * period however many large users are in memory.
 */
const CLOSE_SUMMARY_BUDGET_MS = 2000;

export interface FsBackendOptions {
  /** Memory for recently used session documents; 0 reads every session from disk. */
  sessionCacheBytes?: number;
  /** Memory for users' indexes; idle users beyond it are dropped and reloaded when next seen. */
  indexCacheBytes?: number;
  events?: StorageEvents;
  /** Where the listing summaries' own troubles go (never a request's); silent when unset. */
  logger?: Logger;
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
  return { ...usage, bytes: usage.bytes + pending };
}

/** A write that failed takes down every item of its batch that had been accepted. */
function failAccepted<R>(outcomes: Array<Outcome<R>>, error: unknown): Array<Outcome<R>> {
  return outcomes.map((o) => (o.ok ? { ok: false, error } : o));
}

/**
 * What a cached document is charged against SESSION_CACHE_BYTES: its JSON size twice, for the
 * parsed document and for the JSON bytes that stay beside it once it is written or read
 * (sessions/document-json.ts).
 */
function cacheCharge(jsonBytes: number): number {
  return 2 * jsonBytes;
}

function summaryOf(document: SessionDocument): SessionSummary {
  const { state: _state, ...summary } = document;
  return summary;
}

/**
 * A damaged session as listed: what can be known without its document. It keeps counting
 * every byte it holds, so deleting it is what gives the space back.
 */
function damagedSummary(sessionId: string, modified: Date): SessionSummary {
  const at = modified.toISOString();
  return { id: sessionId, title: '', createdAt: at, updatedAt: at, version: 0, damaged: true };
}

/**
 * What an error met while reading one session says about it: a link, FIFO or directory
 * where a file belongs, or an entry the process may not read, damages that session alone.
 * Null for anything else (a failing disk, a bug), which is not the session's.
 */
function damageOf(error: unknown, part: string): string | null {
  if (error instanceof StorageIntegrityError) return `${part}: ${error.what}`;
  if (isErrno(error, 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'ELOOP', 'EIO')) return `${part} unreadable (${(error as NodeJS.ErrnoException).code})`;
  return null;
}

/** What the files directly in `dir` are charged, as if each were listed (none when it is missing). */
async function chargeOfFilesIn(dir: string): Promise<number> {
  if (!(await isRealDirectory(dir))) return 0;
  let total = 0;
  for (const name of await fs.readdir(dir)) total += chargeOf({ size: await fileSize(path.join(dir, name)) });
  return total;
}

export class FsBackend implements MetadataBackend {
  private readonly locks = new KeyedMutex();
  private readonly events: StorageEvents;
  /** Sessions already reported damaged in this process: one log line each, not one per request. */
  private readonly reportedDamage = new Set<string>();
  /** Least recently used first (Map order): eviction takes from the front. */
  private readonly indexes = new Map<string, SessionIndex>();
  private indexBytes = 0;
  private readonly indexCacheBytes: number;
  private readonly documents: DocumentCache;
  private readonly documentChanges = new GroupCommit<DocumentChange, SessionDocument | null>(
    (_key, changes) => this.commitDocumentChanges(changes),
    'documents',
  );
  private readonly messageAppends = new GroupCommit<MessageAppend, StoredMessage | null>(
    (_key, appends) => this.commitMessages(appends),
    'messages',
  );
  private readonly logger: Logger | undefined;
  /** Summary work running in the background (writes, removals): close waits for it. */
  private readonly background = new Set<Promise<void>>();
  private closing = false;
  private summaryFailureLogged = false;

  constructor(
    private readonly paths: DataPaths,
    options: FsBackendOptions = {},
  ) {
    this.documents = new DocumentCache(options.sessionCacheBytes ?? DEFAULT_SESSION_CACHE_BYTES);
    this.events = options.events ?? NO_EVENTS;
    this.indexCacheBytes = options.indexCacheBytes ?? DEFAULT_INDEX_CACHE_BYTES;
    this.logger = options.logger;
  }

  /** Users whose index is in memory now, and its estimated size (for tests and the benchmark). */
  get indexCache(): { users: number; bytes: number; has(userId: string): boolean } {
    return { users: this.indexes.size, bytes: this.indexBytes, has: (userId) => this.indexes.has(userId) };
  }

  async createSession(userId: string, document: SessionDocument, admit: Admit): Promise<void> {
    await this.changing(userId, async () => {
      const index = await this.writableIndex(userId);
      const data = documentJson(document);
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
      this.documents.endWrite(userId, document.id, { document, bytes: cacheCharge(data.length) });
      index.put({
        summary: summaryOf(document),
        documentBytes: data.length,
        logBytes: 0,
        fileBytes: 0,
        log: { nextSeq: 1, committedBytes: 0, checkpoints: [] },
        files: [],
        journal: { lines: 0, onDisk: false },
      });
      this.grew(userId, index);
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
    this.documents.fill(userId, sessionId, document, cacheCharge(data.length), ticket);
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
    return this.changing(userId, async () => {
      const index = await this.writableIndex(userId);
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

  async listSessions(userId: string, page: Parameters<MetadataBackend['listSessions']>[1]) {
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
    const index = await this.loadedIndex(userId);
    let entry = this.usable(index, sessionId);
    let log = entry?.log;
    if (!entry || !log) {
      [entry, log] = await this.locks.run(userId, async () => {
        const current = await this.indexFor(userId);
        const found = this.usable(current, sessionId);
        return [found, found ? await this.logStateFor(userId, current, found) : undefined] as const;
      });
    }
    if (!entry || !log) return null;
    if (!(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
    if (log.committedBytes === 0) return { items: [], more: false };
    // Read from the nearest checkpoint, within what is committed now: a page costs what the
    // page holds, whatever the length of the log.
    const read = await readLines(
      this.paths.sessionFile(userId, sessionId, MESSAGE_LOG),
      { checkpoints: log.checkpoints, endBytes: log.committedBytes },
      { after: page.afterSeq, limit: page.limit },
    );
    if (!read) return null;
    const items = read.lines.map(({ n, text }) => {
      const message = parseMessageLine(text, n);
      if (!message) this.damaged(userId, sessionId, `message log line ${n}`);
      return message;
    });
    return { items, more: read.more };
  }

  async beginUpload(
    userId: string,
    sessionId: string,
    admission: { admit: Admit; admitFile: AdmitFile },
  ): Promise<UploadQuota | null> {
    const index = await this.loadedIndex(userId);
    // Pinned before anything else is awaited: the upload's reservations must land in the
    // index every later request of this user sees, never in one evicted meanwhile.
    index.pin();
    try {
      if (!this.usable(index, sessionId) || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
      return new FsUploadQuota(index, sessionId, admission, (files) =>
        this.commitUpload(userId, sessionId, files).catch((error: unknown) => {
          throw toDomainError(error);
        }),);
    } finally {
      // The reservation holds its own pin from here on.
      index.unpin();
    }
  }

  async listFiles(userId: string, sessionId: string, page: { after: FileCursor | undefined; limit: number }) {
    const index = await this.loadedIndex(userId);
    const entry = this.usable(index, sessionId);
    if (!entry || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
    return index.filePage(sessionId, page.after, page.limit);
  }

  async findFile(userId: string, sessionId: string, fileId: string): Promise<FileRecord | null> {
    const index = await this.loadedIndex(userId);
    return this.usable(index, sessionId)?.files.find((f) => f.id === fileId) ?? null;
  }

  async deleteFile(userId: string, sessionId: string, fileId: string): Promise<boolean> {
    return this.changing(userId, async () => {
      const index = await this.writableIndex(userId);
      const entry = this.usable(index, sessionId);
      if (!entry || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return false;
      if (!entry.files.some((f) => f.id === fileId)) return false;
      // The bytes go first, so that a delete frees space before it needs any: it works on a
      // full disk. Readers use the list in memory, which drops the file at once. A journal
      // that still names the file (a crash here, or no room even for one more line) is
      // reconciled when the user is next loaded: a record without bytes is dropped.
      await fs.rm(this.paths.fileBlob(userId, sessionId, fileId), { force: true });
      await fsyncDirectory(this.paths.sessionFile(userId, sessionId, FILES_DIR));
      index.removeFile(sessionId, fileId);
      await this.journalIfRoom(userId, entry, { del: [fileId] });
      return true;
    });
  }

  async usage(userId: string): Promise<Usage> {
    const index = await this.loadedIndex(userId);
    return index.usage();
  }

  async deleteUser(userId: string): Promise<void> {
    await this.changing(userId, async () => {
      // Whether or not the user's index is in memory, a summary of what goes must go first.
      await this.beforeDiskChange(userId, this.indexes.get(userId) ?? new SessionIndex());
      const userDir = this.paths.userDir(userId);
      this.documents.dropUser(userId);
      try {
        if (await isRealDirectory(userDir)) {
          await removeTreeAtomically(userDir, this.paths.stagingEntry());
        }
      } finally {
        this.documents.dropUser(userId);
      }
      this.forget(userId);
      const empty = new SessionIndex();
      empty.summaryMaybeOnDisk = false;
      this.touch(userId, empty);
    });
  }

  /**
   * Stops summary work and writes a summary for every cached index that lacks one and is
   * worth one (most recently used first, within CLOSE_SUMMARY_BUDGET_MS), so the next start
   * lists them at once. Call after the last request, before the data directory's lock is
   * given up: nothing is written after it resolves. Never throws: a summary is a cache.
   */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.background]);
    const deadline = performance.now() + CLOSE_SUMMARY_BUDGET_MS;
    for (const [userId, index] of [...this.indexes].reverse()) {
      if (performance.now() > deadline) break;
      if (index.summaryMaybeOnDisk || index.size < SUMMARY_MIN_SESSIONS) continue;
      const snapshot = await this.locks.run(userId, async () => this.summarySnapshot(index));
      if (snapshot) await this.writeSummary(userId, index, snapshot);
    }
    // A removal a request started meanwhile (a session found damaged) finishes before the lock goes.
    await Promise.all([...this.background]);
  }

  /**
   * Applies a batch of changes to one document in arrival order, each on top of the one
   * before (a refused change is skipped), and writes the result once.
   */
  private commitDocumentChanges(changes: DocumentChange[]): Promise<Array<Outcome<SessionDocument | null>>> {
    const { userId, sessionId } = changes[0]!;
    return this.changing(userId, async () => {
      const index = await this.writableIndex(userId);
      const entry = this.usable(index, sessionId);
      let current = entry ? await this.readSession(userId, sessionId) : null;
      if (!entry || !current) return changes.map(() => ({ ok: true, value: null }));
      const outcomes: Array<Outcome<SessionDocument | null>> = [];
      let latest: { document: SessionDocument; data: Buffer } | undefined;
      for (const change of changes) {
        try {
          const next = change.mutate(current);
          const data = documentJson(next);
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
        written = { document: latest.document, bytes: cacheCharge(latest.data.length) };
      } catch (error) {
        index.divergent = true;
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
    return this.changing(userId, async () => {
      const index = await this.writableIndex(userId);
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
        index.divergent = true;
        return failAccepted(outcomes, error);
      }
      let offset = log.committedBytes;
      for (const line of lines) {
        if ((log.nextSeq - 1) % CHECKPOINT_LINES === 0) index.addCheckpoint(sessionId, offset);
        log.nextSeq += 1;
        offset += line.length;
      }
      log.committedBytes += added;
      index.addLogBytes(sessionId, added);
      this.grew(userId, index);
      return outcomes;
    });
  }

  /** Makes files whose bytes wait in staging (blob-store.ts) visible, all together, under the user's lock. */
  private commitUpload(userId: string, sessionId: string, records: FileRecord[]): Promise<FileRecord[] | null> {
    return this.changing(userId, async () => {
      const index = await this.writableIndex(userId);
      const entry = this.usable(index, sessionId);
      if (!entry || !(await isRealDirectory(this.paths.sessionDir(userId, sessionId)))) return null;
      if (!entry.journal.onDisk) {
        // Before any bytes go in: from now on, file bytes without a list are never a commit
        // cut short, so a load never mistakes a removed list for one and deletes the files.
        await writeNewFileDurably(this.paths.sessionFile(userId, sessionId, FILE_JOURNAL), '').catch((error: unknown) => {
          if (!isErrno(error, 'EEXIST')) throw error;
        });
        await fsyncDirectory(this.paths.sessionDir(userId, sessionId));
        entry.journal.onDisk = true;
      }
      const filesDir = this.paths.sessionFile(userId, sessionId, FILES_DIR);
      await ensureDirectory(filesDir);
      for (const file of records) await fs.rename(this.paths.stagedBlob(file.id), this.paths.fileBlob(userId, sessionId, file.id));
      await fsyncDirectory(filesDir);
      // The journal line is the commit: a crash before it leaves blobs no list names, which
      // the next load removes. One line for the whole batch: all of it or none.
      await this.appendJournal(userId, sessionId, entry, { add: records });
      index.addFiles(sessionId, records);
      this.grew(userId, index);
      await this.compactJournalIfLong(userId, entry);
      return records;
    });
  }

  /** Appends one journal line durably; the first one also makes the new file's entry durable. */
  private async appendJournal(userId: string, sessionId: string, entry: IndexedSession, change: JournalEntry): Promise<void> {
    await appendDurably(this.paths.sessionFile(userId, sessionId, FILE_JOURNAL), journalLine(change));
    if (entry.journal.lines === 0) await fsyncDirectory(this.paths.sessionDir(userId, sessionId));
    entry.journal.lines += 1;
  }

  /**
   * Records a change whose effect on disk is already made (bytes removed). On a full disk it
   * is not recorded: the list in memory is right, and a load drops the same records again.
   */
  private async journalIfRoom(userId: string, entry: IndexedSession, change: JournalEntry): Promise<void> {
    try {
      await this.appendJournal(userId, entry.summary.id, entry, change);
      await this.compactJournalIfLong(userId, entry);
    } catch (error) {
      if (!isErrno(error, 'ENOSPC', 'EDQUOT')) throw error;
    }
  }

  /**
   * Folds the journal into a new snapshot once it is longer than the list it describes, so
   * appends stay O(1) and loading stays proportional to the files. The snapshot is replaced
   * atomically before the journal goes; a crash between the two replays the old journal onto
   * a snapshot that already holds it, which changes nothing.
   */
  private async compactJournalIfLong(userId: string, entry: IndexedSession): Promise<void> {
    if (entry.journal.lines <= Math.max(JOURNAL_MIN_LINES, entry.files.length)) return;
    const sessionId = entry.summary.id;
    try {
      await replaceFileAtomically(this.paths.stagingEntry(), this.paths.sessionFile(userId, sessionId, FILE_LIST), JSON.stringify(entry.files));
    } catch (error) {
      // No room for a new snapshot now: the journal stays valid, a later change tries again.
      if (isErrno(error, 'ENOSPC', 'EDQUOT')) return;
      throw error;
    }
    await fs.rm(this.paths.sessionFile(userId, sessionId, FILE_JOURNAL), { force: true });
    await fsyncDirectory(this.paths.sessionDir(userId, sessionId));
    entry.journal.lines = 0;
  }

  /**
   * A session's file list as snapshot and journal say, made to agree with the bytes on disk;
   * callers hold the user's lock. Blobs the list does not name are the leftovers of a commit
   * a crash interrupted and are removed; records whose bytes are gone are dropped, so the
   * list, downloads and usage never disagree. Null when the list is damaged.
   */
  private async loadFiles(userId: string, sessionId: string): Promise<{ files: FileRecord[]; journalLines: number } | null> {
    const journalFile = this.paths.sessionFile(userId, sessionId, FILE_JOURNAL);
    const loaded = await loadFileList(this.paths.sessionFile(userId, sessionId, FILE_LIST), journalFile);
    if (!loaded) return null;
    if (loaded.tornBytes > 0) {
      await truncateFile(journalFile, loaded.journalBytes);
      this.events.tornTailCut(userId, sessionId, loaded.tornBytes);
    }
    const filesDir = this.paths.sessionFile(userId, sessionId, FILES_DIR);
    const present = new Set(await isRealDirectory(filesDir) ? await fs.readdir(filesDir) : []);
    const files = loaded.files.filter((f) => present.has(f.id));
    const named = new Set(files.map((f) => f.id));
    for (const name of present) {
      if (!named.has(name)) await fs.rm(path.join(filesDir, name), { force: true, recursive: true });
    }
    let journalLines = loaded.journalLines;
    if (files.length !== loaded.files.length) {
      try {
        await appendDurably(journalFile, journalLine({ del: loaded.files.filter((f) => !present.has(f.id)).map((f) => f.id) }));
        journalLines += 1;
      } catch (error) {
        if (!isErrno(error, 'ENOSPC', 'EDQUOT')) throw error;
      }
    }
    return { files, journalLines };
  }

  /** The user's index for a reader: loaded under the user's lock the first time only. */
  private async loadedIndex(userId: string): Promise<SessionIndex> {
    const cached = this.indexes.get(userId);
    if (cached) {
      this.touch(userId, cached);
      return cached;
    }
    return this.locks.run(userId, () => this.indexFor(userId));
  }

  /** Marks the user most recently used (Map order is the LRU order) and recounts its size. */
  private touch(userId: string, index: SessionIndex): void {
    this.indexes.delete(userId);
    this.indexes.set(userId, index);
    this.recount(index);
  }

  private recount(index: SessionIndex): void {
    const bytes = index.approximateBytes;
    this.indexBytes += bytes - index.counted;
    index.counted = bytes;
  }

  /** After a write that grew the user's index: count it, and make room if the budget is passed. */
  private grew(userId: string, index: SessionIndex): void {
    if (this.indexes.get(userId) !== index) return;
    this.recount(index);
    this.evictIdle(userId);
  }

  /**
   * Keeps the indexes within their memory budget by dropping the least recently used idle
   * ones: no write of the user under way (their lock is free) and nothing in flight that
   * counts on the object (an upload's reservations). Dropping loses nothing: the index is a
   * copy of what is on disk, rebuilt the next time the user is seen. The estimate of each
   * index is refreshed as users are touched, so the total is approximate by design.
   */
  private evictIdle(keep: string): void {
    for (const [userId, index] of this.indexes) {
      if (this.indexBytes <= this.indexCacheBytes) break;
      if (userId === keep || !index.evictable || !this.locks.isIdle(userId)) continue;
      this.forget(userId);
    }
  }

  private forget(userId: string): void {
    const index = this.indexes.get(userId);
    if (!index) return;
    this.indexes.delete(userId);
    this.indexBytes -= index.counted;
    index.counted = 0;
  }

  /**
   * Runs a change of the user's data under the user's lock. One that fails on the disk (not a
   * refusal: a quota, a missing or damaged session) may have changed it partway, so the
   * user's index is marked divergent and never summarised (see SessionIndex.divergent).
   */
  private changing<T>(userId: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(userId, async () => {
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof AppError)) {
          const index = this.indexes.get(userId);
          if (index) index.divergent = true;
        }
        throw error;
      }
    });
  }

  /**
   * The user's index for a change: every write path takes it here, under the user's lock,
   * so that none can forget that a summary must go before the disk changes.
   */
  private async writableIndex(userId: string): Promise<SessionIndex> {
    const index = await this.indexFor(userId);
    await this.beforeDiskChange(userId, index);
    return index;
  }

  /**
   * Called under the user's lock before anything of the user changes on disk: a summary
   * snapshot taken before now is stale (generation), and no summary stays on disk (removed,
   * durably), so a crash after the change never leaves one that describes the data before it.
   */
  private async beforeDiskChange(userId: string, index: SessionIndex): Promise<void> {
    index.generation += 1;
    await this.dropSummary(userId, index);
  }

  private async dropSummary(userId: string, index: SessionIndex): Promise<void> {
    if (!index.summaryMaybeOnDisk) return;
    await removeUserSummary(this.paths, userId);
    index.summaryMaybeOnDisk = false;
  }

  /**
   * Loads the user's index the first time: from the user's summary when it is current,
   * otherwise from disk (and then a summary is written in the background). Callers hold
   * the user's lock.
   */
  private async indexFor(userId: string): Promise<SessionIndex> {
    const cached = this.indexes.get(userId);
    if (cached) {
      this.touch(userId, cached);
      return cached;
    }
    const index = new SessionIndex();
    const userDir = this.paths.userDir(userId);
    if (await isRealDirectory(userDir)) {
      const sessionIds = (await listDirectories(userDir)).filter(isValidObjectId);
      const summary = await readUserSummary(this.paths, userId, sessionIds);
      if (summary.found === 'current') {
        for (const entry of summary.sessions) index.put(entry);
        this.touch(userId, index);
        this.evictIdle(userId);
        return index;
      }
      if (summary.found === 'none') {
        index.summaryMaybeOnDisk = false;
      } else {
        this.logger?.info('listing summary not used; loading the sessions', { category: 'cache', userId, reason: summary.reason });
        // Nothing but a current summary may stay: loading from disk can change the disk (a
        // torn journal tail cut, unlisted bytes removed), and a stale one is never read twice.
        // One that cannot be removed does not stop the load (it stays unusable for the same
        // reason); the user's writes then fail until it can be, as beforeDiskChange requires.
        await this.dropSummary(userId, index).catch((error: unknown) => this.summaryFailed(error));
      }
      await forEachLimited(sessionIds, INDEX_LOAD_CONCURRENCY, async (sessionId) => {
        const loaded = await this.loadSession(userId, sessionId).catch((error: unknown) => {
          const damaged = damageOf(error, 'session');
          if (damaged === null) throw error;
          return { damaged };
        });
        if ('damaged' in loaded) {
          index.put(await this.damagedEntry(userId, sessionId));
          this.reportDamage(userId, sessionId, loaded.damaged);
        } else {
          index.put(loaded);
        }
      });
      // In the background: the request that loaded the index does not wait for its summary.
      // Not once closing has begun: close writes the summaries itself, then gives up the lock.
      const snapshot = this.closing ? null : this.summarySnapshot(index);
      if (snapshot) this.inBackground(this.writeSummary(userId, index, snapshot));
    }
    this.touch(userId, index);
    this.evictIdle(userId);
    return index;
  }

  /**
   * What a summary of the index would hold, taken now (the caller holds the user's lock, so
   * no change is half made): null when the user has too few sessions for one, or has a
   * damaged session.
   */
  private summarySnapshot(index: SessionIndex): { generation: number; entries: IndexedSession[] } | null {
    if (index.size < SUMMARY_MIN_SESSIONS || index.hasDamage || index.divergent) return null;
    return { generation: index.generation, entries: index.entries() };
  }

  /**
   * Writes the summary of `snapshot`: serialized and staged outside the lock, renamed into
   * place under it only if the index is still the user's cached one and no change began
   * since the snapshot. Failures are logged once per process and never reach a request.
   */
  private async writeSummary(userId: string, index: SessionIndex, snapshot: { generation: number; entries: IndexedSession[] }): Promise<void> {
    let staged: string | undefined;
    try {
      const data = await encodeUserSummary(this.paths, userId, snapshot.entries);
      if (!data || index.generation !== snapshot.generation) return;
      staged = await stageUserSummary(this.paths, data);
      const from = staged;
      await this.locks.run(userId, async () => {
        if (this.indexes.get(userId) !== index || index.generation !== snapshot.generation) return;
        // Set first: were the rename reported failed after it took, the next change still removes it.
        index.summaryMaybeOnDisk = true;
        await installUserSummary(this.paths, userId, from);
        staged = undefined;
      });
    } catch (error) {
      this.summaryFailed(error);
    } finally {
      if (staged) await fs.rm(staged, { force: true }).catch(() => undefined);
    }
  }

  /** Runs summary work without a caller waiting for it; close waits for all of it. */
  private inBackground(work: Promise<void>): void {
    const tracked: Promise<void> = work
      .catch((error: unknown) => this.summaryFailed(error))
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  private summaryFailed(error: unknown): void {
    if (this.summaryFailureLogged) return;
    this.summaryFailureLogged = true;
    this.logger?.warn('cannot write or remove a listing summary; listings load from the sessions instead (logged once)', {
      category: 'cache',
      code: (error as NodeJS.ErrnoException | undefined)?.code ?? (error instanceof Error ? error.message : String(error)),
    });
  }

  /** A session's index entry from disk, or what about it is damaged. */
  private async loadSession(userId: string, sessionId: string): Promise<IndexedSession | { damaged: string }> {
    // One listing says which of the session's files exist, so none is asked for in vain.
    const present = new Set(await fs.readdir(this.paths.sessionDir(userId, sessionId)));
    const data = present.has(SESSION_DOCUMENT) ? await readFileNoFollow(this.paths.sessionFile(userId, sessionId, SESSION_DOCUMENT)) : null;
    const document = data && parseSessionDocument(data, sessionId);
    if (!document) return { damaged: 'session document' };
    let logBytes = 0;
    if (present.has(MESSAGE_LOG)) {
      const log = await fs.lstat(this.paths.sessionFile(userId, sessionId, MESSAGE_LOG));
      if (!log.isFile()) return { damaged: 'message log is not a regular file' };
      logBytes = log.size;
    }
    const listOnDisk = present.has(FILE_LIST) || present.has(FILE_JOURNAL);
    if (!listOnDisk && present.has(FILES_DIR) && (await fs.readdir(this.paths.sessionFile(userId, sessionId, FILES_DIR))).length > 0) {
      // The first commit creates the journal before any bytes go in: file bytes without any
      // list mean the list was removed, not that a commit was cut short. Never delete them.
      return { damaged: 'file list missing' };
    }
    const listed = listOnDisk ? await this.loadFiles(userId, sessionId) : { files: [], journalLines: 0 };
    if (!listed) return { damaged: 'file list' };
    return {
      summary: summaryOf(document),
      documentBytes: data.length,
      logBytes,
      fileBytes: listed.files.reduce((sum, f) => sum + chargeOf(f), 0),
      log: undefined,
      files: listed.files,
      journal: { lines: listed.journalLines, onDisk: listOnDisk },
    };
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
    const scan = await scanMessageLog(file, { everyLine: false }).catch((error: unknown) => {
      const damaged = damageOf(error, 'message log');
      if (damaged !== null) this.damaged(userId, sessionId, damaged);
      throw error;
    });
    if (scan.damagedSeq !== null) this.damaged(userId, sessionId, `message log line ${scan.damagedSeq}`);
    if (scan.tornBytes > 0 || scan.keptBytes + scan.tornBytes !== entry.logBytes) {
      // Cutting a torn tail (a read may) is a change on disk like any write's; a log of
      // another length than the index counted was changed in place while the service was
      // stopped, which a summary cannot see. Either way no summary may keep the old count.
      await this.beforeDiskChange(userId, index);
    }
    if (scan.tornBytes > 0) {
      await truncateFile(file, scan.keptBytes);
      this.events.tornTailCut(userId, sessionId, scan.tornBytes);
    }
    index.addLogBytes(sessionId, scan.keptBytes - entry.logBytes);
    index.setLog(sessionId, { nextSeq: scan.lines + 1, committedBytes: scan.keptBytes, checkpoints: scan.checkpoints });
    this.grew(userId, index);
    return entry.log!;
  }

  /** The session's index entry, unless it is damaged: then nothing but a delete may touch it. */
  private usable(index: SessionIndex, sessionId: string): IndexedSession | undefined {
    const entry = index.get(sessionId);
    if (entry?.summary.damaged) throw new SessionDamaged();
    return entry;
  }

  /**
   * Marks a session damaged (found so while serving it) and refuses the request. A summary
   * that listed it as sound is removed (a summary never holds a damaged session), without
   * waiting: this runs on read paths, outside the user's lock.
   */
  private damaged(userId: string, sessionId: string, what: string): never {
    const index = this.indexes.get(userId);
    const entry = index?.get(sessionId);
    if (index && entry && !entry.summary.damaged) {
      entry.summary.damaged = true;
      index.generation += 1;
      if (index.summaryMaybeOnDisk) this.inBackground(this.locks.run(userId, () => this.dropSummary(userId, index)));
    }
    this.reportDamage(userId, sessionId, what);
    throw new SessionDamaged();
  }

  private reportDamage(userId: string, sessionId: string, what: string): void {
    const key = sessionKey(userId, sessionId);
    if (this.reportedDamage.has(key)) return;
    this.reportedDamage.add(key);
    this.events.sessionDamaged(userId, sessionId, what);
  }

  /** A damaged session as listed and counted: whatever of it can still be measured. */
  private async damagedEntry(userId: string, sessionId: string): Promise<IndexedSession> {
    const measure = <T>(work: Promise<T>, otherwise: T) => work.catch(() => otherwise);
    const mtime = await measure(fs.lstat(this.paths.sessionDir(userId, sessionId)).then((s) => s.mtime), new Date(0));
    return {
      summary: damagedSummary(sessionId, mtime),
      documentBytes: await measure(fileSize(this.paths.sessionFile(userId, sessionId, SESSION_DOCUMENT)), 0),
      logBytes: await measure(fileSize(this.paths.sessionFile(userId, sessionId, MESSAGE_LOG)), 0),
      fileBytes: await measure(chargeOfFilesIn(this.paths.sessionFile(userId, sessionId, FILES_DIR)), 0),
      log: undefined,
      files: [],
      journal: { lines: 0, onDisk: false },
    };
  }
}
