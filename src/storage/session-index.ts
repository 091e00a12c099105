/**
 * One user's sessions as listing needs them, held in memory: summaries sorted newest
 * `updatedAt` first, plus the byte counts behind `/me` usage and quotas. It is built from
 * disk once per process (the first time the user is seen) and then kept up to date by the
 * backend under the user's write lock, so a listing never reads session files.
 */
import type { FileRecord, SessionCursor, SessionSummary, Usage } from './backend';

export interface MessageLogState {
  /** seq the next appended message gets. */
  nextSeq: number;
  /** Bytes of the log that hold complete, acknowledged lines. */
  committedBytes: number;
}

export interface IndexedSession {
  summary: SessionSummary;
  documentBytes: number;
  logBytes: number;
  fileBytes: number;
  /** Known once the message log has been scanned in this process. */
  log: MessageLogState | undefined;
  /** The committed file list, reconciled with the bytes on disk when the index was loaded. */
  files: FileRecord[];
}

/** Newest first: larger updatedAt first, then larger id, so the order is total. */
function comesBefore(a: SessionCursor, b: SessionCursor): boolean {
  if (a.updatedAt !== b.updatedAt) return a.updatedAt > b.updatedAt;
  return a.id > b.id;
}

export class SessionIndex {
  private readonly byId = new Map<string, IndexedSession>();
  private readonly ordered: SessionSummary[] = [];
  private totalBytes = 0;
  /** Bytes of uploads being received: counted against the quota before they are committed. */
  private reservedBytes = 0;

  get(sessionId: string): IndexedSession | undefined {
    return this.byId.get(sessionId);
  }

  /** What the user stores now: what `/me` reports. */
  usage(): Usage {
    return { sessions: this.byId.size, bytes: this.totalBytes };
  }

  /** What quota checks see: stored bytes plus uploads in flight. */
  usageWithReservations(): Usage {
    return { sessions: this.byId.size, bytes: this.totalBytes + this.reservedBytes };
  }

  reserve(bytes: number): void {
    this.reservedBytes += bytes;
  }

  release(bytes: number): void {
    this.reservedBytes -= bytes;
  }

  put(entry: IndexedSession): void {
    this.remove(entry.summary.id);
    this.byId.set(entry.summary.id, entry);
    this.ordered.splice(this.firstAfter(entry.summary), 0, entry.summary);
    this.totalBytes += entry.documentBytes + entry.logBytes + entry.fileBytes;
  }

  remove(sessionId: string): void {
    const existing = this.byId.get(sessionId);
    if (!existing) return;
    this.byId.delete(sessionId);
    const at = this.firstAfter(existing.summary) - 1;
    if (this.ordered[at]?.id === sessionId) this.ordered.splice(at, 1);
    else this.ordered.splice(this.ordered.findIndex((s) => s.id === sessionId), 1);
    this.totalBytes -= existing.documentBytes + existing.logBytes + existing.fileBytes;
  }

  addLogBytes(sessionId: string, bytes: number): void {
    const entry = this.byId.get(sessionId);
    if (!entry) return;
    entry.logBytes += bytes;
    this.totalBytes += bytes;
  }

  addFileBytes(sessionId: string, bytes: number): void {
    const entry = this.byId.get(sessionId);
    if (!entry) return;
    entry.fileBytes += bytes;
    this.totalBytes += bytes;
  }

  page(after: SessionCursor | undefined, limit: number): { items: SessionSummary[]; more: boolean } {
    const start = after ? this.firstAfter(after) : 0;
    const items = this.ordered.slice(start, start + limit);
    return { items, more: start + limit < this.ordered.length };
  }

  /** Index of the first summary that sorts after `key` (binary search). */
  private firstAfter(key: SessionCursor): number {
    let low = 0;
    let high = this.ordered.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (comesBefore(key, this.ordered[mid]!) ) high = mid;
      else low = mid + 1;
    }
    return low;
  }
}
