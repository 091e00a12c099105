/**
 * One user's sessions as listing needs them, held in memory: summaries sorted newest
 * `updatedAt` first, each session's file records oldest first, plus the counts behind `/me`
 * usage and quotas. It is built the first time the user is seen (and again after it was
 * evicted while idle), from the user's listing summary when that is current (user-summary.ts),
 * otherwise from the sessions on disk, then kept up to date by the backend under the user's
 * write lock, so a listing never reads session files.
 */
import { FILE_OVERHEAD_BYTES, type FileCursor, type FileRecord, type SessionCursor, type SessionSummary, type Usage } from '../../sessions/ports';

export interface MessageLogState {
  /** seq the next appended message gets. */
  nextSeq: number;
  /** Bytes of the log that hold complete, acknowledged lines. */
  committedBytes: number;
  /** Where lines 1, 1 + CHECKPOINT_LINES, ... start: a page seeks to the nearest one. */
  checkpoints: number[];
}

export interface FileJournalState {
  /** Lines in `files.jsonl` since the last snapshot. */
  lines: number;
  /** A list (snapshot or journal) exists on disk for the session. */
  onDisk: boolean;
}

export interface IndexedSession {
  summary: SessionSummary;
  documentBytes: number;
  logBytes: number;
  /** What the session's files are charged: their bytes plus FILE_OVERHEAD_BYTES each. */
  fileBytes: number;
  /** Known once the message log has been scanned in this process. */
  log: MessageLogState | undefined;
  /** The committed files in commit order (a batch in request order), reconciled with the bytes on disk when loaded. */
  files: FileRecord[];
  journal: FileJournalState;
}

/**
 * Heap cost of what an index holds, for the eviction budget: measured with `--expose-gc` on
 * indexes loaded from disk (about 570 bytes for a user with no session, 560 more per session).
 */
const BASE_BYTES = 600;
const SESSION_BYTES = 560;
const FILE_BYTES = 420;
const CHECKPOINT_BYTES = 8;

/** Newest first: larger updatedAt first, then larger id, so the order is total. */
function comesBefore(a: SessionCursor, b: SessionCursor): boolean {
  if (a.updatedAt !== b.updatedAt) return a.updatedAt > b.updatedAt;
  return a.id > b.id;
}

/** A file's charge against the quota. */
export function chargeOf(file: Pick<FileRecord, 'size'>): number {
  return file.size + FILE_OVERHEAD_BYTES;
}

export class SessionIndex {
  private readonly byId = new Map<string, IndexedSession>();
  private readonly ordered: SessionSummary[] = [];
  private totalBytes = 0;
  private fileCount = 0;
  /** Bytes of uploads being received: counted against the quota before they are committed. */
  private reservedBytes = 0;
  /** Files being received per session: counted against MAX_FILES_PER_SESSION the same way. */
  private readonly reservedFiles = new Map<string, number>();
  /** Requests holding this index across awaits (uploads): it must not be evicted under them. */
  private pins = 0;
  private checkpoints = 0;
  /** What the backend's cache budget last counted for this index (see `approximateBytes`). */
  counted = 0;
  /**
   * Bumped before every change the backend makes for this user (on disk, or a session found
   * damaged): a listing summary whose snapshot was taken at another generation is stale and
   * is never renamed into place.
   */
  generation = 0;
  /**
   * A change failed partway (the disk refused a write, a rename took and its fsync did not):
   * memory and disk may differ, so no listing summary is written from this index; the next
   * start loads the user from the sessions.
   */
  divergent = false;
  /**
   * A listing summary of this user may be on disk. True for every index as it is loaded,
   * until the backend knows there is none (it found none, or removed it): the first change
   * then removes it before it touches anything (FsBackend.beforeDiskChange).
   */
  summaryMaybeOnDisk = true;

  get(sessionId: string): IndexedSession | undefined {
    return this.byId.get(sessionId);
  }

  /** Sessions held, damaged ones included. */
  get size(): number {
    return this.byId.size;
  }

  /** Every session's entry, in listing order (newest `updatedAt` first). */
  entries(): IndexedSession[] {
    return this.ordered.map((summary) => this.byId.get(summary.id)!);
  }

  /** Some session of the user is damaged (found so at load, or while serving it). */
  get hasDamage(): boolean {
    for (const entry of this.byId.values()) if (entry.summary.damaged) return true;
    return false;
  }

  /** What the user stores now: what `/me` reports. */
  usage(): Usage {
    return { sessions: this.byId.size, files: this.fileCount, bytes: this.totalBytes };
  }

  /** What quota checks see: stored bytes plus uploads in flight. */
  usageWithReservations(): Usage {
    return { sessions: this.byId.size, files: this.fileCount, bytes: this.totalBytes + this.reservedBytes };
  }

  reserve(bytes: number): void {
    this.reservedBytes += bytes;
  }

  release(bytes: number): void {
    this.reservedBytes -= bytes;
  }

  /** Files the session holds plus those being received into it. */
  filesInSession(sessionId: string): number {
    return (this.byId.get(sessionId)?.files.length ?? 0) + (this.reservedFiles.get(sessionId) ?? 0);
  }

  reserveFiles(sessionId: string, count: number): void {
    const left = (this.reservedFiles.get(sessionId) ?? 0) + count;
    if (left === 0) this.reservedFiles.delete(sessionId);
    else this.reservedFiles.set(sessionId, left);
  }

  pin(): void {
    this.pins += 1;
  }

  unpin(): void {
    this.pins -= 1;
  }

  /** Nothing in flight holds or counts on this object: it may be dropped and rebuilt from disk. */
  get evictable(): boolean {
    return this.pins === 0 && this.reservedBytes === 0 && this.reservedFiles.size === 0;
  }

  /** An estimate of the memory the index holds. */
  get approximateBytes(): number {
    return BASE_BYTES + this.byId.size * SESSION_BYTES + this.fileCount * FILE_BYTES + this.checkpoints * CHECKPOINT_BYTES;
  }

  put(entry: IndexedSession): void {
    this.remove(entry.summary.id);
    this.byId.set(entry.summary.id, entry);
    this.ordered.splice(this.firstAfter(entry.summary), 0, entry.summary);
    this.totalBytes += entry.documentBytes + entry.logBytes + entry.fileBytes;
    this.fileCount += entry.files.length;
    this.checkpoints += entry.log?.checkpoints.length ?? 0;
  }

  remove(sessionId: string): void {
    const existing = this.byId.get(sessionId);
    if (!existing) return;
    this.byId.delete(sessionId);
    const at = this.firstAfter(existing.summary) - 1;
    if (this.ordered[at]?.id === sessionId) this.ordered.splice(at, 1);
    else this.ordered.splice(this.ordered.findIndex((s) => s.id === sessionId), 1);
    this.totalBytes -= existing.documentBytes + existing.logBytes + existing.fileBytes;
    this.fileCount -= existing.files.length;
    this.checkpoints -= existing.log?.checkpoints.length ?? 0;
  }

  addLogBytes(sessionId: string, bytes: number): void {
    const entry = this.byId.get(sessionId);
    if (!entry) return;
    entry.logBytes += bytes;
    this.totalBytes += bytes;
  }

  /** The session's message log was scanned, or grew by lines that started checkpoints. */
  setLog(sessionId: string, log: MessageLogState): void {
    const entry = this.byId.get(sessionId);
    if (!entry) return;
    this.checkpoints += log.checkpoints.length - (entry.log?.checkpoints.length ?? 0);
    entry.log = log;
  }

  addCheckpoint(sessionId: string, offset: number): void {
    const log = this.byId.get(sessionId)?.log;
    if (!log) return;
    log.checkpoints.push(offset);
    this.checkpoints += 1;
  }

  /** Files committed to the session: listed, counted and charged. */
  addFiles(sessionId: string, files: FileRecord[]): void {
    const entry = this.byId.get(sessionId);
    if (!entry) return;
    for (const file of files) {
      entry.files.push(file);
      entry.fileBytes += chargeOf(file);
      this.totalBytes += chargeOf(file);
    }
    this.fileCount += files.length;
  }

  removeFile(sessionId: string, fileId: string): FileRecord | undefined {
    const entry = this.byId.get(sessionId);
    const at = entry?.files.findIndex((f) => f.id === fileId) ?? -1;
    if (!entry || at < 0) return undefined;
    const [file] = entry.files.splice(at, 1);
    entry.fileBytes -= chargeOf(file!);
    this.totalBytes -= chargeOf(file!);
    this.fileCount -= 1;
    return file;
  }

  page(after: SessionCursor | undefined, limit: number): { items: SessionSummary[]; more: boolean } {
    const start = after ? this.firstAfter(after) : 0;
    const items = this.ordered.slice(start, start + limit);
    return { items, more: start + limit < this.ordered.length };
  }

  /**
   * A page of the session's files after the cursor's file. When that file was deleted in
   * the meantime, the page starts at the first file created after it.
   */
  filePage(sessionId: string, after: FileCursor | undefined, limit: number): { items: FileRecord[]; more: boolean } {
    const files = this.byId.get(sessionId)?.files ?? [];
    let start = 0;
    if (after) {
      const at = files.findIndex((f) => f.id === after.id);
      start = at >= 0 ? at + 1 : files.findIndex((f) => f.createdAt > after.createdAt);
      if (start < 0) start = files.length;
    }
    return { items: files.slice(start, start + limit), more: start + limit < files.length };
  }

  /** Index of the first summary that sorts after `key` (binary search). */
  private firstAfter(key: SessionCursor): number {
    let low = 0;
    let high = this.ordered.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (comesBefore(key, this.ordered[mid]!)) high = mid;
      else low = mid + 1;
    }
    return low;
  }
}
