/**
 * Work that belongs to no request, run by every process and safe to run by all at once:
 *
 * - the sweeper gives back the reservations of uploads whose process died (they stopped
 *   being extended and expired), and queues their bytes for deletion. Each one is given
 *   back inside its user's own transaction by a DELETE that only one process can win;
 * - the outbox worker deletes the bytes of deleted files, sessions and users. Rows are
 *   claimed with FOR UPDATE SKIP LOCKED, so two workers never take the same rows, and they
 *   leave the outbox only when the blob store confirms the delete (else they are retried).
 */
import type { Logger } from '../../logger';
import type { BlobStore } from '../../sessions/ports';
import type { Database } from './database';
import { lockUsage } from './user-rows';

const OUTBOX_BATCH = 50;
const SWEEP_BATCH = 100;

export class Maintenance {
  private timers: NodeJS.Timeout[] = [];
  private running = new Set<Promise<unknown>>();
  private failing = false;

  constructor(
    private readonly db: Database,
    private readonly blobs: BlobStore,
    private readonly logger: Logger,
  ) {}

  start(intervals: { outboxMs: number; sweepMs: number }): void {
    this.every(intervals.outboxMs, () => this.drainOutbox());
    this.every(intervals.sweepMs, () => this.sweepExpired());
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await Promise.allSettled(this.running);
  }

  /** Gives back expired reservations; how many. */
  async sweepExpired(): Promise<number> {
    const expired = await this.db.asService(async (sql) =>
      (
        await sql.query<{ user_id: string; id: string }>(
          'SELECT user_id, id FROM upload_reservations WHERE expires_at < now() ORDER BY expires_at LIMIT $1',
          [SWEEP_BATCH],
        )
      ).rows,
    );
    let swept = 0;
    for (const { user_id: userId, id } of expired) {
      const gone = await this.db.asUser(userId, async (sql) => {
        // The usage row first, as every upload's transaction takes it: the same lock order, no deadlock.
        await lockUsage(sql, userId);
        const { rows } = await sql.query<{ session_id: string; bytes: number; file_ids: string[] }>(
          'DELETE FROM upload_reservations WHERE user_id = $1 AND id = $2 AND expires_at < now() RETURNING session_id, bytes, file_ids',
          [userId, id],
        );
        const row = rows[0];
        if (!row) return false;
        await sql.query(
          `WITH u AS (
             UPDATE usage SET reserved = reserved - $3 WHERE user_id = $1
           )
           INSERT INTO blob_outbox (user_id, session_id, file_id)
           SELECT $1, $2, unnest($4::uuid[])
           ON CONFLICT DO NOTHING`,
          [userId, row.session_id, row.bytes, row.file_ids],
        );
        return true;
      });
      if (gone) swept += 1;
    }
    if (swept > 0) this.logger.info('expired upload reservations swept', { category: 'recovery', count: swept });
    return swept;
  }

  /** Deletes one batch of queued blobs; how many. */
  drainOutbox(): Promise<number> {
    return this.db.asService(async (sql) => {
      const { rows } = await sql.query<{ user_id: string; session_id: string; file_id: string }>(
        `DELETE FROM blob_outbox WHERE (user_id, session_id, file_id) IN (
           SELECT user_id, session_id, file_id FROM blob_outbox ORDER BY enqueued_at LIMIT $1 FOR UPDATE SKIP LOCKED
         )
         RETURNING user_id, session_id, file_id`,
        [OUTBOX_BATCH],
      );
      // Inside the transaction: a failed delete rolls the rows back into the queue.
      await Promise.all(rows.map((r) => this.blobs.delete({ userId: r.user_id, sessionId: r.session_id, fileId: r.file_id })));
      return rows.length;
    });
  }

  /** Drains the outbox until it is empty (tests, and shutdown of a quiet process). */
  async drainAll(): Promise<void> {
    while ((await this.drainOutbox()) > 0) {
      // keep draining
    }
  }

  private every(ms: number, work: () => Promise<unknown>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      const run = work().then(
        () => {
          if (this.failing) this.logger.info('background storage work recovered', { category: 'recovery' });
          this.failing = false;
        },
        (error: unknown) => {
          // Once per outage, not once per tick.
          if (!this.failing) this.logger.warn('background storage work failed; retrying', { error: error instanceof Error ? error.message : String(error) });
          this.failing = true;
        },
      );
      this.running.add(run);
      void run.finally(() => {
        busy = false;
        this.running.delete(run);
      });
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }
}
