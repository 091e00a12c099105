/** Statements every write of a user starts from: the usage row it serializes on, and whether a session exists. */
import type { Usage } from '../../sessions/ports';
import type { Sql } from './database';

/**
 * Locks the user's usage row (creating it the first time) and returns usage as admissions
 * must see it: what is stored plus what uploads in flight hold.
 */
export async function lockUsage(sql: Sql, userId: string): Promise<Usage> {
  const { rows } = await sql.query<{ sessions: number; files: number; bytes: number; reserved: number }>(
    `INSERT INTO usage AS u (user_id) VALUES ($1)
     ON CONFLICT (user_id) DO UPDATE SET user_id = u.user_id
     RETURNING sessions, files, bytes, reserved`,
    [userId],
  );
  const row = rows[0]!;
  return { sessions: row.sessions, files: row.files, bytes: row.bytes + row.reserved };
}

export async function sessionExists(sql: Sql, userId: string, sessionId: string): Promise<boolean> {
  const { rows } = await sql.query('SELECT 1 FROM sessions WHERE user_id = $1 AND id = $2', [userId, sessionId]);
  return rows.length > 0;
}
