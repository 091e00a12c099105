/**
 * An upload's reservation, persisted as a row every process sees: what it holds of the user's
 * quota (`usage.reserved` carries the sum) and of the session's file count, and the ids its
 * bytes go under. Bytes are reserved ahead in steps, so a large file costs a transaction per
 * step rather than per chunk. Each step pushes the expiry out, and so does the first chunk
 * after a third of the TTL without one, so a slow upload keeps its share however long it
 * takes (config makes the TTL at least twice the upload idle timeout, after which a stalled
 * upload is aborted and released). A reservation whose process died stops being extended,
 * expires, and is swept (maintenance.ts). No transaction or lock is held while bytes stream.
 *
 * Every change first checks that the reservation row still exists (DELETE/UPDATE ...
 * RETURNING): a reservation already swept or erased with its user gives nothing back twice.
 */
import { randomUUID } from 'node:crypto';
import { ServiceUnavailable } from '../../errors';
import { FILE_OVERHEAD_BYTES, type Admit, type AdmitFile, type FileQuota, type FileRecord, type UploadQuota } from '../../sessions/ports';
import type { Database, Sql } from './database';
import { lockUsage, sessionExists } from './user-rows';

/** Bytes reserved ahead of the stream: one transaction per this many bytes of a large file. */
const RESERVATION_STEP = 4 * 1024 * 1024;

export class PgUploadQuota implements UploadQuota {
  private released = false;
  private extendedAt = Date.now();

  private constructor(
    private readonly db: Database,
    private readonly userId: string,
    private readonly sessionId: string,
    private readonly id: string,
    private readonly admission: { admit: Admit; admitFile: AdmitFile },
    private readonly ttlSeconds: number,
  ) {}

  /** Null when the session does not exist. */
  static async begin(
    db: Database,
    userId: string,
    sessionId: string,
    admission: { admit: Admit; admitFile: AdmitFile },
    ttlSeconds: number,
  ): Promise<PgUploadQuota | null> {
    // Internal bookkeeping, never shown to a client: not one of the domain's ids.
    const id = randomUUID();
    const created = await db.asUser(userId, async (sql) => {
      if (!(await sessionExists(sql, userId, sessionId))) return false;
      await sql.query(
        `INSERT INTO upload_reservations (user_id, id, session_id, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))`,
        [userId, id, sessionId, ttlSeconds],
      );
      return true;
    });
    return created ? new PgUploadQuota(db, userId, sessionId, id, admission, ttlSeconds) : null;
  }

  async admitFile(fileId: string): Promise<FileQuota> {
    await this.db.asUser(this.userId, async (sql) => {
      const usage = await lockUsage(sql, this.userId);
      const { rows } = await sql.query<{ files: number }>(
        `SELECT (SELECT file_count FROM sessions WHERE user_id = $1 AND id = $2)
              + (SELECT coalesce(sum(files), 0) FROM upload_reservations WHERE user_id = $1 AND session_id = $2)::int AS files`,
        [this.userId, this.sessionId],
      );
      this.admission.admitFile(rows[0]?.files ?? 0);
      // Checked here, held with the file's first bytes: held now, the overheads of many
      // concurrent uploads near the quota would crowd out every one's bytes, and all would fail.
      this.admission.admit(usage, FILE_OVERHEAD_BYTES);
      await this.hold(sql, 0, 1, fileId);
    });
    return new PgFileQuota(this);
  }

  async commit(files: FileRecord[]): Promise<FileRecord[] | null> {
    const committed = await this.db.asUser(this.userId, async (sql) => {
      await lockUsage(sql, this.userId);
      const held = await this.dropRow(sql);
      if (held === null) throw new ServiceUnavailable('The upload took too long and its reservation expired; send it again.');
      if (!(await sessionExists(sql, this.userId, this.sessionId))) return null;
      const charged = files.reduce((sum, f) => sum + f.size + FILE_OVERHEAD_BYTES, 0);
      // What the reservation did not cover (the overhead of an empty file, which never grew)
      // must still fit, counting every other upload in flight.
      if (charged > held) this.admission.admit(await lockUsage(sql, this.userId), charged - held);
      await sql.query(
        `WITH f AS (
           INSERT INTO files (user_id, session_id, id, name, size, content_type, sha256, created_at)
           SELECT $1, $2, id, name, size, content_type, sha256, created_at
           FROM unnest($3::uuid[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::timestamptz[])
             WITH ORDINALITY AS f (id, name, size, content_type, sha256, created_at, n)
           ORDER BY n
         ), s AS (
           UPDATE sessions SET file_bytes = file_bytes + $9, file_count = file_count + $10 WHERE user_id = $1 AND id = $2
         )
         UPDATE usage SET files = files + $10, bytes = bytes + $9 WHERE user_id = $1`,
        [
          this.userId,
          this.sessionId,
          files.map((f) => f.id),
          files.map((f) => f.name),
          files.map((f) => f.size),
          files.map((f) => f.contentType),
          files.map((f) => f.sha256),
          files.map((f) => f.createdAt),
          charged,
          files.length,
        ],
      );
      return files;
    });
    // The row went with the commit (or, for a session gone meanwhile, with the same
    // transaction): the release that follows has nothing left to give back.
    this.released = true;
    return committed;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.db.asUser(this.userId, (sql) => this.dropRow(sql));
  }

  /** Pushes the expiry out when a third of the TTL has passed since it last was; else nothing to wait for. */
  extendIfDue(): Promise<void> | undefined {
    if (Date.now() - this.extendedAt < (this.ttlSeconds * 1000) / 3) return undefined;
    this.extendedAt = Date.now();
    return this.db
      .asUser(this.userId, (sql) =>
        sql.query('UPDATE upload_reservations SET expires_at = now() + make_interval(secs => $3) WHERE user_id = $1 AND id = $2', [
          this.userId,
          this.id,
          this.ttlSeconds,
        ]),
      )
      .then(() => undefined);
  }

  /** Reserves `bytes` more, and optionally one more file and its id; extends the expiry. */
  async hold(sql: Sql, bytes: number, files: number, fileId?: string): Promise<void> {
    const { rows } = await sql.query(
      `UPDATE upload_reservations
       SET bytes = bytes + $3, files = files + $4,
           file_ids = CASE WHEN $5::uuid IS NULL THEN file_ids ELSE array_append(file_ids, $5::uuid) END,
           expires_at = now() + make_interval(secs => $6)
       WHERE user_id = $1 AND id = $2
       RETURNING 1`,
      [this.userId, this.id, bytes, files, fileId ?? null, this.ttlSeconds],
    );
    this.extendedAt = Date.now();
    if (rows.length === 0) throw new ServiceUnavailable('The upload took too long and its reservation expired; send it again.');
    await sql.query('UPDATE usage SET reserved = reserved + $2 WHERE user_id = $1', [this.userId, bytes]);
  }

  /** Gives back `bytes` and one file, if the reservation still exists. */
  async giveBack(bytes: number): Promise<void> {
    await this.db.asUser(this.userId, async (sql) => {
      await lockUsage(sql, this.userId);
      const { rows } = await sql.query(
        'UPDATE upload_reservations SET bytes = bytes - $3, files = files - 1 WHERE user_id = $1 AND id = $2 RETURNING 1',
        [this.userId, this.id, bytes],
      );
      if (rows.length > 0) await sql.query('UPDATE usage SET reserved = reserved - $2 WHERE user_id = $1', [this.userId, bytes]);
    });
  }

  /** Grows a file's share by at least `needed`, ahead by a step when the quota allows it. */
  async reserveAhead(needed: number): Promise<number> {
    return this.db.asUser(this.userId, async (sql) => {
      const usage = await lockUsage(sql, this.userId);
      let granted = Math.max(needed, RESERVATION_STEP);
      try {
        this.admission.admit(usage, granted);
      } catch (error) {
        // Near the limit a whole step may not fit where the bytes themselves do: the quota
        // refuses only what cannot fit exactly.
        if (granted === needed) throw error;
        this.admission.admit(usage, needed);
        granted = needed;
      }
      await this.hold(sql, granted, 0);
      return granted;
    });
  }

  /** Deletes the reservation and gives back what it held; null when it was already gone. */
  private async dropRow(sql: Sql): Promise<number | null> {
    const { rows } = await sql.query<{ bytes: number }>('DELETE FROM upload_reservations WHERE user_id = $1 AND id = $2 RETURNING bytes', [
      this.userId,
      this.id,
    ]);
    if (!rows[0]) return null;
    await sql.query('UPDATE usage SET reserved = reserved - $2 WHERE user_id = $1', [this.userId, rows[0].bytes]);
    return rows[0].bytes;
  }
}

/** One file's share: bytes come out of what was reserved ahead, a new step only when it runs out. */
class PgFileQuota implements FileQuota {
  private available = 0;
  private held = 0;
  private cancelled = false;

  constructor(private readonly upload: PgUploadQuota) {}

  grow(bytes: number): void | Promise<void> {
    // The first bytes bring the file's overhead with them (see admitFile).
    const wanted = bytes + (this.held === 0 ? FILE_OVERHEAD_BYTES : 0);
    if (wanted <= this.available) {
      this.available -= wanted;
      return this.upload.extendIfDue();
    }
    const needed = wanted - this.available;
    return this.upload.reserveAhead(needed).then((granted) => {
      this.held += granted;
      this.available = granted - needed;
    });
  }

  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    await this.upload.giveBack(this.held);
  }
}
