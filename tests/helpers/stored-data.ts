/**
 * What a user has, read back as a client reads it (every session, message and file record,
 * paged through), and what the service charges for it: for tests that check, after a crash
 * or across replicas, that usage is exactly what is stored.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export interface SessionDoc {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
  version: number;
  state: Record<string, Json>;
}
export interface Message {
  id: string;
  seq: number;
  role: string;
  content: string;
  metadata: Record<string, Json>;
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
export type Everything = Map<string, { doc: SessionDoc; messages: Message[]; files: FileRecord[] }>;

/** Everything a user can see, paged through as a client would; `get` answers a GET with its JSON (and throws on anything but 200). */
export async function everythingOf(get: <T>(path: string) => Promise<T>): Promise<Everything> {
  const sessionIds: string[] = [];
  for (let cursor: string | null = null; ; ) {
    const page: { items: Array<{ id: string }>; nextCursor: string | null } = await get(
      `/api/v1/sessions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    sessionIds.push(...page.items.map((s) => s.id));
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  const readSession = async (id: string) => {
    const doc = await get<SessionDoc>(`/api/v1/sessions/${id}`);
    const messages: Message[] = [];
    for (let after = 0; ; ) {
      const page = await get<{ items: Message[]; nextCursor: number | null }>(`/api/v1/sessions/${id}/messages?limit=200&after=${after}`);
      messages.push(...page.items);
      if (page.nextCursor === null) break;
      after = page.nextCursor;
    }
    const files: FileRecord[] = [];
    for (let cursor: string | null = null; ; ) {
      const page: { items: FileRecord[]; nextCursor: string | null } = await get(
        `/api/v1/sessions/${id}/files?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      files.push(...page.items);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    return { doc, messages, files };
  };
  // A few sessions at a time, in listing order.
  const sessions: Everything = new Map();
  for (let i = 0; i < sessionIds.length; i += 8) {
    const batch = sessionIds.slice(i, i + 8);
    const read = await Promise.all(batch.map(readSession));
    batch.forEach((id, k) => sessions.set(id, read[k]!));
  }
  return sessions;
}

/**
 * What the service charges, recomputed from what the user can read: each document as
 * stored, each message as a log line, each file's size plus the per-file overhead.
 */
export function chargedBytes(sessions: Everything, fileOverheadBytes: number): number {
  let bytes = 0;
  for (const { doc, messages, files } of sessions.values()) {
    const { id, title, createdAt, updatedAt, version, state } = doc;
    bytes += Buffer.byteLength(JSON.stringify({ id, title, createdAt, updatedAt, version, state }));
    for (const m of messages) {
      const line = JSON.stringify({ id: m.id, seq: m.seq, role: m.role, content: m.content, metadata: m.metadata, createdAt: m.createdAt });
      bytes += Buffer.byteLength(line) + 1;
    }
    for (const f of files) bytes += f.size + fileOverheadBytes;
  }
  return bytes;
}
