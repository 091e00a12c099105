/** Reads a session's messages page by page and checks every page across the log's checkpoint boundaries. */
import request from 'supertest';
import { CHECKPOINT_LINES } from '../../src/storage/fs/message-log';
import type { OneSession } from './one-session';

/** Message k carries a body whose length varies with k, so line offsets are irregular. */
export const contentOf = (seq: number) => `message ${seq} ${'x'.repeat((seq * 37) % 300)}`;

/** `current` gives the app, user and session as they are now (a restart replaces them). */
export function messagePages(current: () => OneSession) {
  async function page(after: number, limit: number) {
    const { t, alice, sessionId } = current();
    const res = await request(t.app).get(`/api/v1/sessions/${sessionId}/messages`).query({ after, limit }).set(alice).expect(200);
    return res.body as { items: Array<{ seq: number; content: string }>; nextCursor: number | null };
  }

  /** Every page around the checkpoints holds exactly the messages after its cursor, each with contentOf(seq). */
  async function expectPagesCorrect(total: number): Promise<void> {
    const boundaries = [0, 1, CHECKPOINT_LINES - 1, CHECKPOINT_LINES, CHECKPOINT_LINES + 1, 2 * CHECKPOINT_LINES, total - 1, total];
    for (const after of boundaries) {
      for (const limit of [1, 7, 50]) {
        const { items, nextCursor } = await page(after, limit);
        const expected = Array.from({ length: Math.max(0, Math.min(limit, total - after)) }, (_, i) => after + 1 + i);
        expect(items.map((m) => m.seq)).toEqual(expected);
        for (const m of items) expect(m.content).toBe(contentOf(m.seq));
        expect(nextCursor).toBe(after + limit < total ? after + limit : null);
      }
    }
  }

  return { page, expectPagesCorrect };
}
