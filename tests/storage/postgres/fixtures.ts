/**
 * What the PostgreSQL storage tests share: data made through the real backend (so that the
 * rows under test are the rows the service writes), plain clients for looking at them as a
 * given role, an in-memory blob store that records deletes, and polling instead of sleeping.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Client } from 'pg';
import type { BlobRef, BlobStore, FileRecord, OpenedBlob, SessionDocument, StoredMessage } from '../../../src/sessions/ports';
import { Database } from '../../../src/storage/postgres/database';
export { queryOnce } from '../../helpers/postgres';
import type { PgBackend } from '../../../src/storage/postgres/pg-backend';

/** Admits everything: these tests are about who can see a row, not about limits. */
export const admitAll = { admit: (): void => undefined, admitFile: (): void => undefined };

export function openDatabase(url: string): Database {
  return new Database({ url, poolMax: 4, statementTimeoutMs: 10_000 });
}

export async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url });
  await client.connect();
  return client;
}

export async function createSession(backend: PgBackend, userId: string, title: string): Promise<string> {
  const now = new Date().toISOString();
  const document: SessionDocument = { id: randomUUID(), title, createdAt: now, updatedAt: now, version: 1, state: { owner: userId } };
  await backend.createSession(userId, document, admitAll.admit);
  return document.id;
}

export async function appendMessage(backend: PgBackend, userId: string, sessionId: string, content: string): Promise<StoredMessage> {
  const message = await backend.appendMessage(
    userId,
    sessionId,
    (seq) => ({ id: randomUUID(), seq, role: 'user', content, metadata: {}, createdAt: new Date().toISOString() }),
    admitAll.admit,
  );
  if (!message) throw new Error(`no session ${sessionId} for ${userId}`);
  return message;
}

/** A whole upload of one file, as the store drives it: begin, admit, grow, commit. */
export async function uploadFile(backend: PgBackend, userId: string, sessionId: string, name: string, bytes: Buffer): Promise<FileRecord> {
  const quota = await backend.beginUpload(userId, sessionId, admitAll);
  if (!quota) throw new Error(`no session ${sessionId} for ${userId}`);
  try {
    const record: FileRecord = {
      id: randomUUID(),
      name,
      size: bytes.length,
      contentType: 'text/plain',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      createdAt: new Date().toISOString(),
    };
    const file = await quota.admitFile(record.id);
    await file.grow(bytes.length);
    const committed = await quota.commit([record]);
    if (!committed) throw new Error('the session went away during the upload');
    return record;
  } finally {
    await quota.release();
  }
}

/**
 * An upload that admitted files and grew, then was never committed nor released: what a
 * process that died mid-upload leaves behind. Returns the ids its bytes went under.
 */
export async function abandonUpload(backend: PgBackend, userId: string, sessionId: string, files: number, bytesEach: number): Promise<string[]> {
  const quota = await backend.beginUpload(userId, sessionId, admitAll);
  if (!quota) throw new Error(`no session ${sessionId} for ${userId}`);
  const ids: string[] = [];
  for (let i = 0; i < files; i += 1) {
    const id = randomUUID();
    const file = await quota.admitFile(id);
    await file.grow(bytesEach);
    ids.push(id);
  }
  return ids;
}

/** Polls `condition` until it holds; never a fixed sleep longer than `intervalMs`. */
export async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function key(ref: BlobRef): string {
  return `${ref.userId}/${ref.sessionId}/${ref.fileId}`;
}

/**
 * Blob bytes in memory. Every delete is recorded, so a test can tell a blob deleted twice
 * from one deleted once; `failDeletesOf` makes deletes of some file ids fail, as an
 * unreachable object store would.
 */
export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, Buffer>();
  readonly deletes: BlobRef[] = [];
  readonly failDeletesOf = new Set<string>();

  constructor(private readonly deleteLatencyMs = 0) {}

  async put(ref: BlobRef, source: Readable): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of source) chunks.push(chunk as Buffer);
    this.blobs.set(key(ref), Buffer.concat(chunks));
  }

  /** Bytes as a dead process would have left them: put, never committed. */
  plant(ref: BlobRef): void {
    this.blobs.set(key(ref), Buffer.from(`bytes of ${ref.fileId}`));
  }

  has(ref: BlobRef): boolean {
    return this.blobs.has(key(ref));
  }

  async open(): Promise<OpenedBlob | null> {
    throw new Error('not used by these tests');
  }

  async delete(ref: BlobRef): Promise<void> {
    // An object store's round trip: the worker's claim on its outbox rows stays open meanwhile,
    // which is when a second worker could take the same rows if claiming were wrong.
    if (this.deleteLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.deleteLatencyMs));
    if (this.failDeletesOf.has(ref.fileId)) throw new Error(`object store unavailable for ${ref.fileId}`);
    this.deletes.push(ref);
    this.blobs.delete(key(ref));
  }

  /** How many times each file id was deleted. */
  deleteCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const ref of this.deletes) counts.set(ref.fileId, (counts.get(ref.fileId) ?? 0) + 1);
    return counts;
  }
}
