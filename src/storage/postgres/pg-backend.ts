/**
 * The PostgreSQL metadata backend: sessions, messages, file records, usage and upload
 * reservations in tables that row-level security keeps per user, shared by any number of
 * processes. Every method is one transaction as its user (database.ts), and every invariant
 * is the database's, not this process's:
 *
 * - exact quota: every write of a user first locks that user's usage row, so admissions of
 *   one user are serialized across processes and each sees usage as it is;
 * - dense seq: the session row's next_seq is advanced in the transaction that stores the
 *   message, so a refused or failed append gives its number back;
 * - version checks: the document is read FOR UPDATE, so `mutate` sees the stored version and
 *   nothing changes it before the write;
 * - file bytes are deleted through the outbox, in the transaction that deletes their records.
 *
 * It keeps no cache: any process may have changed anything since.
 */
import type {
  Admit,
  AdmitFile,
  FileCursor,
  FileRecord,
  MetadataBackend,
  SessionCursor,
  SessionDocument,
  SessionSummary,
  StoredMessage,
  UploadQuota,
  Usage,
} from '../../sessions/ports';
import { FILE_OVERHEAD_BYTES } from '../../sessions/ports';
import type { Database } from './database';
import { PgUploadQuota } from './upload-quota';
import { lockUsage, sessionExists } from './user-rows';

interface SessionRow {
  id: string;
  title: string;
  state: string;
  version: number;
  created_at: Date;
  updated_at: Date;
  doc_bytes: number;
}

interface MessageRow {
  id: string;
  seq: number;
  role: string;
  content: string;
  metadata: string;
  created_at: Date;
}

interface FileRow {
  id: string;
  name: string;
  size: number;
  content_type: string;
  sha256: string;
  created_at: Date;
}

const SESSION_COLUMNS = 'id, title, state, version, created_at, updated_at, doc_bytes';
const FILE_COLUMNS = 'id, name, size, content_type, sha256, created_at';

function documentOf(row: SessionRow): SessionDocument {
  return {
    id: row.id,
    title: row.title,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    version: row.version,
    state: JSON.parse(row.state) as SessionDocument['state'],
  };
}

function messageOf(row: MessageRow): StoredMessage {
  return {
    id: row.id,
    seq: row.seq,
    role: row.role,
    content: row.content,
    metadata: JSON.parse(row.metadata) as StoredMessage['metadata'],
    createdAt: row.created_at.toISOString(),
  };
}

export function fileOf(row: FileRow): FileRecord {
  return {
    id: row.id,
    name: row.name,
    size: row.size,
    contentType: row.content_type,
    sha256: row.sha256,
    createdAt: row.created_at.toISOString(),
  };
}

/** What a document is charged: its JSON as the filesystem backend would store it. */
function documentBytes(document: SessionDocument): number {
  return Buffer.byteLength(JSON.stringify(document), 'utf8');
}

/** What a message is charged: its line in a log, as the filesystem backend would store it. */
function messageBytes(message: StoredMessage): number {
  return Buffer.byteLength(JSON.stringify(message), 'utf8') + 1;
}

export class PgBackend implements MetadataBackend {
  constructor(
    private readonly db: Database,
    private readonly reservationTtlSeconds: number,
  ) {}

  createSession(userId: string, document: SessionDocument, admit: Admit): Promise<void> {
    return this.db.asUser(userId, async (sql) => {
      const bytes = documentBytes(document);
      admit(await lockUsage(sql, userId), bytes);
      await sql.query(
        `WITH s AS (
           INSERT INTO sessions (user_id, id, title, state, version, created_at, updated_at, doc_bytes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         )
         UPDATE usage SET sessions = sessions + 1, bytes = bytes + $8 WHERE user_id = $1`,
        [userId, document.id, document.title, JSON.stringify(document.state), document.version, document.createdAt, document.updatedAt, bytes],
      );
    });
  }

  readSession(userId: string, sessionId: string): Promise<SessionDocument | null> {
    return this.db.asUser(userId, async (sql) => {
      const { rows } = await sql.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND id = $2`, [userId, sessionId]);
      return rows[0] ? documentOf(rows[0]) : null;
    });
  }

  updateSession(
    userId: string,
    sessionId: string,
    mutate: (current: SessionDocument) => SessionDocument,
    admit: Admit,
  ): Promise<SessionDocument | null> {
    return this.db.asUser(userId, async (sql) => {
      const usage = await lockUsage(sql, userId);
      const { rows } = await sql.query<SessionRow>(
        `SELECT ${SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND id = $2 FOR UPDATE`,
        [userId, sessionId],
      );
      const row = rows[0];
      if (!row) return null;
      const next = mutate(documentOf(row));
      const bytes = documentBytes(next);
      admit(usage, bytes - row.doc_bytes);
      await sql.query(
        `WITH s AS (
           UPDATE sessions SET title = $3, state = $4, version = $5, updated_at = $6, doc_bytes = $7
           WHERE user_id = $1 AND id = $2
         )
         UPDATE usage SET bytes = bytes + $8 WHERE user_id = $1`,
        [userId, sessionId, next.title, JSON.stringify(next.state), next.version, next.updatedAt, bytes, bytes - row.doc_bytes],
      );
      return next;
    });
  }

  deleteSession(userId: string, sessionId: string): Promise<boolean> {
    return this.db.asUser(userId, async (sql) => {
      await lockUsage(sql, userId);
      await sql.query(
        `INSERT INTO blob_outbox (user_id, session_id, file_id)
         SELECT user_id, session_id, id FROM files WHERE user_id = $1 AND session_id = $2
         ON CONFLICT DO NOTHING`,
        [userId, sessionId],
      );
      const { rows } = await sql.query<{ charged: number; file_count: number }>(
        `DELETE FROM sessions WHERE user_id = $1 AND id = $2
         RETURNING doc_bytes + log_bytes + file_bytes AS charged, file_count`,
        [userId, sessionId],
      );
      const deleted = rows[0];
      if (!deleted) return false;
      await sql.query('UPDATE usage SET sessions = sessions - 1, files = files - $2, bytes = bytes - $3 WHERE user_id = $1', [
        userId,
        deleted.file_count,
        deleted.charged,
      ]);
      return true;
    });
  }

  listSessions(userId: string, page: { after: SessionCursor | undefined; limit: number }): Promise<{ items: SessionSummary[]; more: boolean }> {
    return this.db.asUser(userId, async (sql) => {
      const { rows } = page.after
        ? await sql.query<SessionRow>(
            `SELECT ${SESSION_COLUMNS} FROM sessions
             WHERE user_id = $1 AND (updated_at, id) < ($2::timestamptz, $3::uuid)
             ORDER BY updated_at DESC, id DESC LIMIT $4`,
            [userId, page.after.updatedAt, page.after.id, page.limit + 1],
          )
        : await sql.query<SessionRow>(
            `SELECT ${SESSION_COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2`,
            [userId, page.limit + 1],
          );
      const items = rows.slice(0, page.limit).map((row) => {
        const { state: _state, ...summary } = documentOf({ ...row, state: '{}' });
        return summary;
      });
      return { items, more: rows.length > page.limit };
    });
  }

  appendMessage(
    userId: string,
    sessionId: string,
    build: (seq: number) => StoredMessage,
    admit: Admit,
  ): Promise<StoredMessage | null> {
    return this.db.asUser(userId, async (sql) => {
      const usage = await lockUsage(sql, userId);
      const { rows } = await sql.query<{ seq: number }>(
        'UPDATE sessions SET next_seq = next_seq + 1 WHERE user_id = $1 AND id = $2 RETURNING next_seq - 1 AS seq',
        [userId, sessionId],
      );
      if (!rows[0]) return null;
      const message = build(rows[0].seq);
      const bytes = messageBytes(message);
      // A refusal here rolls the transaction back, next_seq with it: the number is not lost.
      admit(usage, bytes);
      await sql.query(
        `WITH m AS (
           INSERT INTO messages (user_id, session_id, seq, id, role, content, metadata, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ), s AS (
           UPDATE sessions SET log_bytes = log_bytes + $9 WHERE user_id = $1 AND id = $2
         )
         UPDATE usage SET bytes = bytes + $9 WHERE user_id = $1`,
        [userId, sessionId, message.seq, message.id, message.role, message.content, JSON.stringify(message.metadata), message.createdAt, bytes],
      );
      return message;
    });
  }

  listMessages(
    userId: string,
    sessionId: string,
    page: { afterSeq: number; limit: number },
  ): Promise<{ items: StoredMessage[]; more: boolean } | null> {
    return this.db.asUser(userId, async (sql) => {
      const { rows } = await sql.query<MessageRow>(
        `SELECT id, seq, role, content, metadata, created_at FROM messages
         WHERE user_id = $1 AND session_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
        [userId, sessionId, page.afterSeq, page.limit + 1],
      );
      if (rows.length === 0 && !(await sessionExists(sql, userId, sessionId))) return null;
      return { items: rows.slice(0, page.limit).map(messageOf), more: rows.length > page.limit };
    });
  }

  beginUpload(userId: string, sessionId: string, admission: { admit: Admit; admitFile: AdmitFile }): Promise<UploadQuota | null> {
    return PgUploadQuota.begin(this.db, userId, sessionId, admission, this.reservationTtlSeconds);
  }

  listFiles(
    userId: string,
    sessionId: string,
    page: { after: FileCursor | undefined; limit: number },
  ): Promise<{ items: FileRecord[]; more: boolean } | null> {
    return this.db.asUser(userId, async (sql) => {
      // After the cursor's file; if that file has been deleted since, after the last file
      // created no later than it (as the filesystem backend does).
      const { rows } = await sql.query<FileRow>(
        `SELECT ${FILE_COLUMNS} FROM files
         WHERE user_id = $1 AND session_id = $2 AND position > coalesce(
           (SELECT position FROM files WHERE user_id = $1 AND session_id = $2 AND id = $3::uuid),
           (SELECT max(position) FROM files WHERE user_id = $1 AND session_id = $2 AND created_at <= $4::timestamptz),
           0)
         ORDER BY position LIMIT $5`,
        [userId, sessionId, page.after?.id ?? null, page.after?.createdAt ?? '-infinity', page.limit + 1],
      );
      if (rows.length === 0 && !(await sessionExists(sql, userId, sessionId))) return null;
      return { items: rows.slice(0, page.limit).map(fileOf), more: rows.length > page.limit };
    });
  }

  findFile(userId: string, sessionId: string, fileId: string): Promise<FileRecord | null> {
    return this.db.asUser(userId, async (sql) => {
      const { rows } = await sql.query<FileRow>(`SELECT ${FILE_COLUMNS} FROM files WHERE user_id = $1 AND session_id = $2 AND id = $3`, [
        userId,
        sessionId,
        fileId,
      ]);
      return rows[0] ? fileOf(rows[0]) : null;
    });
  }

  deleteFile(userId: string, sessionId: string, fileId: string): Promise<boolean> {
    return this.db.asUser(userId, async (sql) => {
      await lockUsage(sql, userId);
      const { rows } = await sql.query<{ size: number }>('DELETE FROM files WHERE user_id = $1 AND session_id = $2 AND id = $3 RETURNING size', [
        userId,
        sessionId,
        fileId,
      ]);
      if (!rows[0]) return false;
      const charged = rows[0].size + FILE_OVERHEAD_BYTES;
      await sql.query(
        `WITH o AS (
           INSERT INTO blob_outbox (user_id, session_id, file_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
         ), s AS (
           UPDATE sessions SET file_bytes = file_bytes - $4, file_count = file_count - 1 WHERE user_id = $1 AND id = $2
         )
         UPDATE usage SET files = files - 1, bytes = bytes - $4 WHERE user_id = $1`,
        [userId, sessionId, fileId, charged],
      );
      return true;
    });
  }

  usage(userId: string): Promise<Usage> {
    return this.db.asUser(userId, async (sql) => {
      const { rows } = await sql.query<Usage>('SELECT sessions, files, bytes FROM usage WHERE user_id = $1', [userId]);
      return rows[0] ?? { sessions: 0, files: 0, bytes: 0 };
    });
  }

  deleteUser(userId: string): Promise<void> {
    return this.db.asUser(userId, async (sql) => {
      await lockUsage(sql, userId);
      await sql.query(
        `INSERT INTO blob_outbox (user_id, session_id, file_id)
         SELECT user_id, session_id, id FROM files WHERE user_id = $1
         ON CONFLICT DO NOTHING`,
        [userId],
      );
      await sql.query('DELETE FROM sessions WHERE user_id = $1', [userId]);
      // Uploads in flight find their reservation gone and fail at commit; their bytes are
      // deleted by the upload itself, or by the sweeper if its process dies.
      await sql.query(
        `WITH r AS (
           DELETE FROM upload_reservations WHERE user_id = $1 RETURNING session_id, file_ids
         )
         INSERT INTO blob_outbox (user_id, session_id, file_id)
         SELECT $1, r.session_id, f FROM r, unnest(r.file_ids) AS f
         ON CONFLICT DO NOTHING`,
        [userId],
      );
      await sql.query('UPDATE usage SET sessions = 0, files = 0, bytes = 0, reserved = 0 WHERE user_id = $1', [userId]);
    });
  }
}
