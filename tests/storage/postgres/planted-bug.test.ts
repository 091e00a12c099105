/**
 * Row-level security is a second wall: query paths written here with the tenant filter
 * forgotten, as a careless change to the backend might write them, still reach only the
 * rows of the user whose transaction runs them. Each buggy query is also run as the
 * superuser, whom RLS does not hold, to show that the query itself really is wide open and
 * that the policies are what stops it.
 */
import { randomUUID } from 'node:crypto';
import type { Database, Sql } from '../../../src/storage/postgres/database';
import { migrate } from '../../../src/storage/postgres/migrate';
import { PgBackend } from '../../../src/storage/postgres/pg-backend';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { appendMessage, createSession, openDatabase, queryOnce, uploadFile } from './fixtures';

let testDb: TestDatabase | undefined;
let db: Database | undefined;
let backend: PgBackend;
const sessionsOf: Record<string, string[]> = {};

function database(): Database {
  if (!db) throw new Error('not open');
  return db;
}

// The planted bugs: each forgets `user_id = $1`.
const buggy = {
  readSession: (sql: Sql, sessionId: string) => sql.query<{ user_id: string; id: string }>('SELECT * FROM sessions WHERE id = $1', [sessionId]),
  listFiles: (sql: Sql) => sql.query<{ user_id: string; name: string }>('SELECT * FROM files'),
  listMessages: (sql: Sql, sessionId: string) => sql.query<{ user_id: string }>('SELECT * FROM messages WHERE session_id = $1', [sessionId]),
  renameAll: (sql: Sql) => sql.query("UPDATE sessions SET title = 'pwned'"),
  deleteFile: (sql: Sql, fileName: string) => sql.query('DELETE FROM files WHERE name = $1', [fileName]),
};

beforeAll(async () => {
  testDb = await createTestDatabase();
  await migrate(testDb.migrationUrl, testDb.appRole, 10_000);
  db = openDatabase(testDb.databaseUrl);
  backend = new PgBackend(db, 600);
  for (const user of ['alice', 'bob']) {
    sessionsOf[user] = [];
    for (const n of [1, 2]) {
      const sessionId = await createSession(backend, user, `${user} ${n}`);
      sessionsOf[user]!.push(sessionId);
      await appendMessage(backend, user, sessionId, `${user} says ${n}`);
      await uploadFile(backend, user, sessionId, 'notes.txt', Buffer.from(`${user}'s notes ${n}`));
    }
  }
}, 60_000);

afterAll(async () => {
  await db?.close();
  await testDb?.drop();
}, 60_000);

test("reading a session by id alone, alice asking for bob's session gets nothing; for her own, her row", async () => {
  const bobs = sessionsOf.bob![0]!;
  const alices = sessionsOf.alice![0]!;
  const asAdmin = await queryOnce<{ user_id: string }>(testDb!.adminUrl, 'SELECT * FROM sessions WHERE id = $1', [bobs]);
  expect(asAdmin.map((r) => r.user_id)).toEqual(['bob']);

  expect((await database().asUser('alice', (sql) => buggy.readSession(sql, bobs))).rows).toEqual([]);
  expect((await database().asUser('alice', (sql) => buggy.readSession(sql, alices))).rows.map((r) => r.user_id)).toEqual(['alice']);
});

test("listing every file and a session's messages without the user returns only alice's", async () => {
  const allFiles = await queryOnce<{ user_id: string }>(testDb!.adminUrl, 'SELECT * FROM files');
  expect(new Set(allFiles.map((r) => r.user_id))).toEqual(new Set(['alice', 'bob']));

  const files = (await database().asUser('alice', buggy.listFiles)).rows;
  expect(files).toHaveLength(2);
  expect(files.every((f) => f.user_id === 'alice')).toBe(true);

  expect((await database().asUser('alice', (sql) => buggy.listMessages(sql, sessionsOf.bob![0]!))).rows).toEqual([]);
});

test("an UPDATE without WHERE renames only alice's sessions", async () => {
  const updated = await database().asUser('alice', buggy.renameAll);
  expect(updated.rowCount).toBe(2);
  const titles = await queryOnce<{ user_id: string; title: string }>(testDb!.adminUrl, 'SELECT user_id, title FROM sessions ORDER BY user_id, title');
  expect(titles).toEqual([
    { user_id: 'alice', title: 'pwned' },
    { user_id: 'alice', title: 'pwned' },
    { user_id: 'bob', title: 'bob 1' },
    { user_id: 'bob', title: 'bob 2' },
  ]);
});

test("a DELETE by file name alone removes only alice's files", async () => {
  const deleted = await database().asUser('alice', (sql) => buggy.deleteFile(sql, 'notes.txt'));
  expect(deleted.rowCount).toBe(2);
  const left = await queryOnce<{ user_id: string }>(testDb!.adminUrl, 'SELECT user_id FROM files');
  expect(left.map((r) => r.user_id)).toEqual(['bob', 'bob']);
});

test('a buggy path running with no user at all (asService) reaches nothing', async () => {
  const seen = await database().asService(async (sql) => ({
    session: (await buggy.readSession(sql, sessionsOf.bob![0]!)).rowCount,
    renamed: (await buggy.renameAll(sql)).rowCount,
  }));
  expect(seen).toEqual({ session: 0, renamed: 0 });
  // And a made-up user sees no one's data either.
  expect((await database().asUser(randomUUID(), buggy.listFiles)).rows).toEqual([]);
});
