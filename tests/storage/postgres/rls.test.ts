/**
 * Row-level security as the app role meets it, in plain SQL: with app.user_id set to alice a
 * transaction sees, changes and creates only alice's rows in every user table, whatever its
 * WHERE says; with no user set (never, or no longer) it sees nothing. The two tables with
 * extra policies are shown to allow exactly what they say: the outbox is a queue of blob ids
 * any worker may read and drain but only a user's own transaction may fill, and an expired
 * reservation is visible to the sweeper but still changeable only by its own user.
 *
 * The rows are made by the real backend as the app role, so the policies are checked against
 * the rows the service actually writes.
 */
import type { Client } from 'pg';
import type { Database } from '../../../src/storage/postgres/database';
import { migrate } from '../../../src/storage/postgres/migrate';
import { PgBackend } from '../../../src/storage/postgres/pg-backend';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { abandonUpload, appendMessage, connect, createSession, openDatabase, queryOnce, uploadFile } from './fixtures';

const TABLES = ['sessions', 'messages', 'files', 'usage', 'upload_reservations'] as const;
type Table = (typeof TABLES)[number];

let testDb: TestDatabase | undefined;
let db: Database | undefined;
let app: Client | undefined;
let backend: PgBackend;
const sessionOf: Record<string, string> = {};

function appClient(): Client {
  if (!app) throw new Error('not connected');
  return app;
}

function adminUrl(): string {
  if (!testDb) throw new Error('no database');
  return testDb.adminUrl;
}

/** Runs `work` in one transaction on the app role's connection, as `userId` (or nobody). */
async function inTransaction<T>(userId: string | null, work: (client: Client) => Promise<T>, end: 'COMMIT' | 'ROLLBACK' = 'ROLLBACK'): Promise<T> {
  const client = appClient();
  await client.query('BEGIN');
  try {
    if (userId !== null) await client.query("SELECT set_config('app.user_id', $1, true)", [userId]);
    const result = await work(client);
    await client.query(end);
    return result;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

/** The statement fails as a row-level security violation, in a transaction of its own. */
async function expectRefused(userId: string | null, text: string, values: unknown[] = []): Promise<void> {
  await expect(inTransaction(userId, (client) => client.query(text, values))).rejects.toMatchObject({
    code: '42501',
    message: expect.stringMatching(/row-level security policy/),
  });
}

/** Every row of the user in the table, as the superuser (whom RLS does not hold) sees it. */
async function rowsOf(table: Table | 'blob_outbox', userId: string): Promise<string[]> {
  const rows = await queryOnce<{ row: string }>(adminUrl(), `SELECT to_jsonb(t)::text AS row FROM ${table} t WHERE user_id = $1`, [userId]);
  return rows.map((r) => r.row).sort();
}

/** A row of bob's for each table, as an INSERT that alice's transaction attempts. */
function bobInsert(table: Table): { text: string; values: unknown[] } {
  const bobSession = sessionOf.bob;
  switch (table) {
    case 'sessions':
      return {
        text: "INSERT INTO sessions (user_id, id, title, state, version, created_at, updated_at, doc_bytes) VALUES ('bob', gen_random_uuid(), 'planted', '{}', 1, now(), now(), 2)",
        values: [],
      };
    case 'messages':
      return {
        text: "INSERT INTO messages (user_id, session_id, seq, id, role, content, metadata, created_at) VALUES ('bob', $1, 999, gen_random_uuid(), 'user', 'planted', '{}', now())",
        values: [bobSession],
      };
    case 'files':
      return {
        text: "INSERT INTO files (user_id, session_id, id, name, size, content_type, sha256, created_at) VALUES ('bob', $1, gen_random_uuid(), 'planted.txt', 1, 'text/plain', 'x', now())",
        values: [bobSession],
      };
    case 'usage':
      // lockUsage's own upsert, as a query path that passed the wrong user would run it.
      return {
        text: "INSERT INTO usage AS u (user_id) VALUES ('bob') ON CONFLICT (user_id) DO UPDATE SET reserved = 0 RETURNING *",
        values: [],
      };
    case 'upload_reservations':
      return {
        text: "INSERT INTO upload_reservations (user_id, id, session_id, expires_at) VALUES ('bob', gen_random_uuid(), $1, now() + interval '1 hour')",
        values: [bobSession],
      };
  }
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  await migrate(testDb.migrationUrl, testDb.appRole, 10_000);
  db = openDatabase(testDb.databaseUrl);
  // Reservations that outlive every test, so that upload_reservations has live rows of both.
  backend = new PgBackend(db, 3600);
  for (const user of ['alice', 'bob']) {
    const sessionId = await createSession(backend, user, `${user}'s first`);
    const other = await createSession(backend, user, `${user}'s second`);
    sessionOf[user] = sessionId;
    await appendMessage(backend, user, sessionId, `hello from ${user}`);
    await appendMessage(backend, user, other, `more from ${user}`);
    await uploadFile(backend, user, sessionId, 'kept.txt', Buffer.from(`${user} keeps this`));
    const gone = await uploadFile(backend, user, sessionId, 'deleted.txt', Buffer.from(`${user} deletes this`));
    // Puts the file's blob in the outbox, so that both users have outbox rows too.
    await backend.deleteFile(user, sessionId, gone.id);
    await abandonUpload(backend, user, sessionId, 1, 100);
  }
  app = await connect(testDb.databaseUrl);
}, 60_000);

afterAll(async () => {
  await app?.end();
  await db?.close();
  await testDb?.drop();
}, 60_000);

test('the fixture holds rows of both users in every table', async () => {
  for (const table of [...TABLES, 'blob_outbox'] as const) {
    expect((await rowsOf(table, 'alice')).length).toBeGreaterThan(0);
    expect((await rowsOf(table, 'bob')).length).toBeGreaterThan(0);
  }
});

describe.each(TABLES)('%s, in a transaction as alice', (table) => {
  test('SELECT * without WHERE returns exactly her rows; WHERE user_id = bob returns none', async () => {
    const expected = await rowsOf(table, 'alice');
    const { all, bobs } = await inTransaction('alice', async (client) => ({
      all: (await client.query<{ row: string }>(`SELECT to_jsonb(t)::text AS row FROM ${table} t`)).rows.map((r) => r.row).sort(),
      bobs: (await client.query(`SELECT * FROM ${table} WHERE user_id = 'bob'`)).rows,
    }));
    expect(all).toEqual(expected);
    expect(bobs).toEqual([]);
  });

  test("UPDATE and DELETE of bob's rows change nothing, even committed", async () => {
    const before = await rowsOf(table, 'bob');
    const counts = await inTransaction(
      'alice',
      async (client) => ({
        updated: (await client.query(`UPDATE ${table} SET user_id = 'alice' WHERE user_id = 'bob'`)).rowCount,
        deleted: (await client.query(`DELETE FROM ${table} WHERE user_id = 'bob'`)).rowCount,
      }),
      'COMMIT',
    );
    expect(counts).toEqual({ updated: 0, deleted: 0 });
    expect(await rowsOf(table, 'bob')).toEqual(before);
  });

  test('INSERT of a row of bob is refused (42501)', async () => {
    const before = await rowsOf(table, 'bob');
    const { text, values } = bobInsert(table);
    await expectRefused('alice', text, values);
    expect(await rowsOf(table, 'bob')).toEqual(before);
  });

  test('handing one of her rows to bob is refused (42501)', async () => {
    await expectRefused('alice', `UPDATE ${table} SET user_id = 'bob' WHERE user_id = 'alice'`);
  });
});

describe('with no user set', () => {
  async function countsPerTable(client: Client): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const table of TABLES) counts[table] = (await client.query(`SELECT * FROM ${table}`)).rows.length;
    return counts;
  }
  const nothing = Object.fromEntries(TABLES.map((t) => [t, 0]));

  test('a fresh transaction, and a statement outside any transaction, see nothing', async () => {
    expect(await inTransaction(null, countsPerTable)).toEqual(nothing);
    expect(await countsPerTable(appClient())).toEqual(nothing);
  });

  test.each(['COMMIT', 'ROLLBACK'] as const)('after a transaction as alice ended by %s, the same connection sees nothing', async (end) => {
    const during = await inTransaction('alice', countsPerTable, end);
    for (const table of TABLES) expect(during[table]).toBeGreaterThan(0);
    // The setting survives the transaction as '' rather than disappearing: the nullif in the
    // policies is what makes that mean nobody.
    const setting = (await appClient().query<{ v: string | null }>("SELECT current_setting('app.user_id', true) AS v")).rows[0]?.v;
    expect(setting).toBe('');
    expect(await inTransaction(null, countsPerTable)).toEqual(nothing);
    expect(await countsPerTable(appClient())).toEqual(nothing);
  });

  test('nothing can be inserted for anyone', async () => {
    for (const table of TABLES) {
      const { text, values } = bobInsert(table);
      await expectRefused(null, text, values);
    }
  });
});

describe('blob_outbox', () => {
  test('holds blob ids only, which is why every worker may read and drain all of it', async () => {
    const columns = await queryOnce<{ column_name: string }>(
      adminUrl(),
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'blob_outbox' ORDER BY ordinal_position",
    );
    expect(columns.map((c) => c.column_name)).toEqual(['user_id', 'session_id', 'file_id', 'enqueued_at']);
  });

  test("alice's transaction can queue her own blobs but not bob's (42501); nobody's transaction can queue any", async () => {
    const insert = 'INSERT INTO blob_outbox (user_id, session_id, file_id) VALUES ($1, $2, gen_random_uuid())';
    await expect(inTransaction('alice', (client) => client.query(insert, ['alice', sessionOf.alice]))).resolves.toMatchObject({ rowCount: 1 });
    await expectRefused('alice', insert, ['bob', sessionOf.bob]);
    await expectRefused(null, insert, ['bob', sessionOf.bob]);
  });

  test('a worker with no user reads every row, claims them with SKIP LOCKED and deletes them, but cannot rewrite one', async () => {
    const alices = await rowsOf('blob_outbox', 'alice');
    const bobs = await rowsOf('blob_outbox', 'bob');
    const drained = await inTransaction(null, async (client) => {
      const read = (await client.query('SELECT * FROM blob_outbox')).rowCount;
      const claimed = (await client.query('SELECT * FROM blob_outbox FOR UPDATE SKIP LOCKED')).rowCount;
      const deleted = (await client.query('DELETE FROM blob_outbox')).rowCount;
      return { read, claimed, deleted };
    });
    // Rolled back, so the other tests still find the rows.
    const total = alices.length + bobs.length;
    expect(drained).toEqual({ read: total, claimed: total, deleted: total });
    await expectRefused(null, "UPDATE blob_outbox SET user_id = 'alice' WHERE user_id = 'bob'");
    await expectRefused('bob', 'UPDATE blob_outbox SET enqueued_at = now()');
    expect(await rowsOf('blob_outbox', 'bob')).toEqual(bobs);
  });
});

describe('an expired reservation of bob', () => {
  test('is visible to a transaction with no user (the sweeper), but neither alice nor nobody can change or delete it', async () => {
    // Made already a minute past its expiry, as the reservation of a process that died then.
    const expiredBackend = new PgBackend(db!, -60);
    const [fileId] = await abandonUpload(expiredBackend, 'bob', sessionOf.bob!, 1, 100);
    const [reservation] = await queryOnce<{ id: string; bytes: number }>(
      adminUrl(),
      'SELECT id, bytes FROM upload_reservations WHERE user_id = $1 AND $2 = ANY(file_ids)',
      ['bob', fileId],
    );
    try {
      const before = await rowsOf('upload_reservations', 'bob');
      const seenBySweeper = await inTransaction(null, async (client) => (await client.query<{ user_id: string; id: string }>('SELECT user_id, id FROM upload_reservations')).rows);
      expect(seenBySweeper).toEqual([{ user_id: 'bob', id: reservation!.id }]);

      for (const userId of ['alice', null]) {
        const changed = await inTransaction(
          userId,
          async (client) => ({
            extended: (await client.query("UPDATE upload_reservations SET expires_at = now() + interval '1 hour' WHERE id = $1", [reservation!.id])).rowCount,
            shrunk: (await client.query("UPDATE upload_reservations SET bytes = 0 WHERE user_id = 'bob'")).rowCount,
            deleted: (await client.query('DELETE FROM upload_reservations WHERE id = $1', [reservation!.id])).rowCount,
          }),
          'COMMIT',
        );
        expect(changed).toEqual({ extended: 0, shrunk: 0, deleted: 0 });
      }
      expect(await rowsOf('upload_reservations', 'bob')).toEqual(before);
    } finally {
      // Gives it back by hand, so that the other tests see only live reservations.
      await queryOnce(
        adminUrl(),
        `WITH r AS (DELETE FROM upload_reservations WHERE user_id = 'bob' AND id = $1 RETURNING bytes)
         UPDATE usage SET reserved = reserved - (SELECT bytes FROM r) WHERE user_id = 'bob'`,
        [reservation!.id],
      );
    }
  });
});
