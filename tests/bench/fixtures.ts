/**
 * Data directories written straight to disk, in the layouts the service reads: many current
 * sessions (as the service itself would have stored them) and many legacy shared sessions.
 * Writing them directly takes seconds where creating them through the API would take minutes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { forEachLimited } from '../../src/storage/fs/for-each-limited';
import { DataPaths, SESSION_DOCUMENT } from '../../src/storage/fs/paths';

const CONCURRENCY = 64;

/** `sessionsPerUser` current sessions for each of `users` users, each with a small state. */
export async function writeCurrentSessions(dataDir: string, users: string[], sessionsPerUser: number): Promise<void> {
  const paths = new DataPaths(dataDir);
  await fs.mkdir(paths.sessionsRoot, { recursive: true });
  for (const userId of users) await fs.mkdir(paths.userDir(userId), { recursive: true });
  const jobs = users.flatMap((userId) => Array.from({ length: sessionsPerUser }, (_, i) => ({ userId, i })));
  const base = Date.parse('2026-01-01T00:00:00.000Z');
  await forEachLimited(jobs, CONCURRENCY, async ({ userId, i }) => {
    const id = randomUUID();
    const at = new Date(base + i * 1000).toISOString();
    const document = { id, title: `session ${i}`, createdAt: at, updatedAt: at, version: 1, state: { step: i } };
    await fs.mkdir(paths.sessionDir(userId, id));
    await fs.writeFile(paths.sessionFile(userId, id, SESSION_DOCUMENT), JSON.stringify(document));
  });
}

/**
 * `count` legacy shared sessions (`sessions/<id>/` holding the session's files directly),
 * the same tree under each of `roots`, so one copy can go to the service and one to `rm -rf`.
 */
export async function writeLegacySessions(roots: string[], count: number): Promise<void> {
  const ids = Array.from({ length: count }, () => randomBytes(12).toString('hex'));
  const state = JSON.stringify({ legacy: true, notes: 'x'.repeat(200) });
  const messages = `${JSON.stringify({ role: 'user', content: 'hello' })}\n`.repeat(3);
  await forEachLimited(
    roots.flatMap((root) => ids.map((id) => path.join(root, 'sessions', id))),
    CONCURRENCY,
    async (dir) => {
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'state.json'), state);
      await fs.writeFile(path.join(dir, 'messages.json'), messages);
    },
  );
}
