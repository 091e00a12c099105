/**
 * Migrations as several replicas starting together run them: five at once on a fresh
 * database all succeed and the schema is applied exactly once; a later run finds nothing to
 * do. What they leave the app role is use of the tables and nothing more: no DDL, no way
 * around row-level security (not owning, not ALTER, not TRUNCATE, which RLS does not cover),
 * and no membership of the owner role.
 */
import { Client } from 'pg';
import { migrate, migrationFiles } from '../../../src/storage/postgres/migrate';
import { PgBackend } from '../../../src/storage/postgres/pg-backend';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { connect, createSession, openDatabase, queryOnce } from './fixtures';

let testDb: TestDatabase | undefined;

function t(): TestDatabase {
  if (!testDb) throw new Error('no database');
  return testDb;
}

async function dropTestDatabase(): Promise<void> {
  await testDb?.drop();
  testDb = undefined;
}

describe('on a fresh database', () => {
  beforeAll(async () => {
    testDb = await createTestDatabase();
  }, 60_000);
  afterAll(dropTestDatabase, 60_000);

  test('five concurrent runs on a fresh database: all succeed, each migration applied and recorded once', async () => {
    const names = migrationFiles().map((m) => m.name);
    expect(names.length).toBeGreaterThan(0);

    const results = await Promise.all(Array.from({ length: 5 }, () => migrate(t().migrationUrl, t().appRole, 10_000)));

    expect(results.every((r) => r.owner === t().ownerRole)).toBe(true);
    const appliers = results.filter((r) => r.applied.length > 0);
    expect(appliers).toHaveLength(1);
    expect(appliers[0]!.applied).toEqual(names);
    const recorded = await queryOnce<{ version: number; name: string }>(t().adminUrl, 'SELECT version, name FROM schema_migrations ORDER BY version');
    expect(recorded.map((r) => r.name)).toEqual(names);

    expect((await migrate(t().migrationUrl, t().appRole, 10_000)).applied).toEqual([]);
    expect(await queryOnce(t().adminUrl, 'SELECT version FROM schema_migrations')).toHaveLength(names.length);
  });

  test('a replica given only the app role (no DATABASE_MIGRATION_URL) finds the schema up to date and changes nothing', async () => {
    // Runs after the test above has migrated this database.
    expect(await migrate(t().databaseUrl, t().appRole, 10_000)).toEqual({ applied: [], owner: t().ownerRole });
  });
});

test('the app role alone on a database nobody has migrated is refused by PostgreSQL, and nothing is created', async () => {
  testDb = await createTestDatabase();
  try {
    await expect(migrate(t().databaseUrl, t().appRole, 10_000)).rejects.toThrow(/permission denied for schema public/);
    expect(await queryOnce(t().adminUrl, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).toEqual([]);
  } finally {
    await dropTestDatabase();
  }
}, 60_000);

// One database for these: every statement tried here is refused, so none changes what the next sees.
describe('what the app role is left with', () => {
  let app: Client | undefined;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    await migrate(t().migrationUrl, t().appRole, 10_000);
    app = await connect(t().databaseUrl);
  }, 60_000);

  afterAll(async () => {
    await app?.end();
    app = undefined;
    await dropTestDatabase();
  }, 60_000);

  test('it can use the tables through the backend', async () => {
    const db = openDatabase(t().databaseUrl);
    try {
      const backend = new PgBackend(db, 60);
      const sessionId = await createSession(backend, 'alice', 'hello');
      expect((await backend.readSession('alice', sessionId))?.title).toBe('hello');
      expect(await backend.deleteSession('alice', sessionId)).toBe(true);
      expect((await backend.usage('alice')).sessions).toBe(0);
    } finally {
      await db.close();
    }
  });

  test.each([
    ['CREATE TABLE', 'CREATE TABLE planted (x int)'],
    ['ALTER ... DISABLE ROW LEVEL SECURITY', 'ALTER TABLE sessions DISABLE ROW LEVEL SECURITY'],
    ['ALTER ... NO FORCE ROW LEVEL SECURITY', 'ALTER TABLE files NO FORCE ROW LEVEL SECURITY'],
    ['ALTER ... ADD COLUMN', 'ALTER TABLE usage ADD COLUMN planted int'],
    ['DROP POLICY', 'DROP POLICY tenant ON messages'],
    ['CREATE POLICY', "CREATE POLICY everyone ON sessions FOR SELECT USING (true)"],
    ['DROP TABLE', 'DROP TABLE upload_reservations'],
    // TRUNCATE is not subject to row-level security: it must not be granted at all.
    ['TRUNCATE', 'TRUNCATE sessions CASCADE'],
    ['TRUNCATE blob_outbox', 'TRUNCATE blob_outbox'],
    ['changing schema_migrations', "DELETE FROM schema_migrations"],
    ['recording a migration', "INSERT INTO schema_migrations (version, name) VALUES (999, 'planted')"],
    ['SET ROLE to the owner', 'SET ROLE %OWNER%'],
    ['ALTER ROLE itself BYPASSRLS', 'ALTER ROLE %APP% BYPASSRLS'],
  ])('%s is refused', async (_what, statement) => {
    const text = statement.replace('%OWNER%', t().ownerRole).replace('%APP%', t().appRole);
    await expect(app!.query(text)).rejects.toMatchObject({ code: '42501' });
  });

  test('it owns no table and is not a member of the owner role', async () => {
    const owners = await queryOnce<{ tablename: string; tableowner: string }>(
      t().adminUrl,
      "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    );
    expect(owners.map((r) => r.tablename)).toEqual(['blob_outbox', 'files', 'messages', 'schema_migrations', 'service_keys', 'sessions', 'upload_reservations', 'usage']);
    expect(owners.every((r) => r.tableowner === t().ownerRole)).toBe(true);
    const [membership] = await queryOnce<{ member: boolean }>(t().adminUrl, "SELECT pg_has_role($1, $2, 'MEMBER') AS member", [t().appRole, t().ownerRole]);
    expect(membership?.member).toBe(false);
  });

  test('every table holding user data has row-level security enabled and forced', async () => {
    const tables = await queryOnce<{ relname: string; enabled: boolean; forced: boolean }>(
      t().adminUrl,
      "SELECT relname, relrowsecurity AS enabled, relforcerowsecurity AS forced FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname",
    );
    const secured = tables.filter((r) => r.enabled && r.forced).map((r) => r.relname);
    expect(secured).toEqual(['blob_outbox', 'files', 'messages', 'sessions', 'upload_reservations', 'usage']);
  });
});
