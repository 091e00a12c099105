/**
 * Recently used session documents, held in memory up to a byte budget, so that reading a
 * session (and the read a PATCH starts with) costs no filesystem call.
 *
 * Writers own the truth: they run under the user's lock, and put the document they wrote
 * once it is on disk. A reader that missed may fill the cache with what it read from disk,
 * but only if no write began or ended anywhere since it started reading (the generation
 * did not move), so a slow read can never put back a document a write has replaced.
 * Cached documents are shared: callers treat them as immutable.
 */
import type { SessionDocument } from '../../sessions/ports';

/** One session of one user, as a map key; a user id never holds a NUL, so keys never collide. */
export function sessionKey(userId: string, sessionId: string): string {
  return `${userId}\u0000${sessionId}`;
}

interface Entry {
  document: SessionDocument;
  bytes: number;
}

export class DocumentCache {
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;
  private generation = 0;

  constructor(private readonly maxBytes: number) {}

  get(userId: string, sessionId: string): SessionDocument | undefined {
    const key = sessionKey(userId, sessionId);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // Most recently used last: Map keeps insertion order, eviction takes from the front.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.document;
  }

  /** Taken before a read from disk; `fill` accepts the result only while it is current. */
  ticket(): number {
    return this.generation;
  }

  fill(userId: string, sessionId: string, document: SessionDocument, bytes: number, ticket: number): void {
    if (ticket === this.generation) this.store(sessionKey(userId, sessionId), document, bytes);
  }

  /** A write to the session starts: drop what is cached and refuse fills already under way. */
  beginWrite(userId: string, sessionId: string): void {
    this.generation += 1;
    this.drop(sessionKey(userId, sessionId));
  }

  /** The write finished: `document` is what disk now holds, or undefined when unknown or gone. */
  endWrite(userId: string, sessionId: string, written?: { document: SessionDocument; bytes: number }): void {
    this.generation += 1;
    const key = sessionKey(userId, sessionId);
    if (written) this.store(key, written.document, written.bytes);
    else this.drop(key);
  }

  /** Everything of one user is gone (DELETE /me). */
  dropUser(userId: string): void {
    this.generation += 1;
    const prefix = sessionKey(userId, '');
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.drop(key);
  }

  private store(key: string, document: SessionDocument, bytes: number): void {
    this.drop(key);
    if (bytes > this.maxBytes) return;
    this.entries.set(key, { document, bytes });
    this.totalBytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.totalBytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.totalBytes -= entry.bytes;
    }
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.totalBytes -= entry.bytes;
  }
}
