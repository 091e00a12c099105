/**
 * The service refuses to serve as a role that row-level security would not hold (a
 * superuser, the tables' owner, a role with BYPASSRLS), each time with a line that names
 * DATABASE_URL and says what to do instead, and opens as a proper app role. A URL that
 * cannot connect is reported by its variable's name, never with its password, neither in
 * the error lines nor in the log.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { PostgresStorageConfig } from '../../../src/config';
import { createLogger, silentLogger, type Logger } from '../../../src/logger';
import type { OpenStorageResult } from '../../../src/storage/opened-storage';
import { openPostgresStorage, type PairedBlobStore } from '../../../src/storage/postgres/open';
import { freePort } from '../../helpers/free-port';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { MemoryBlobStore, queryOnce } from './fixtures';

let testDb: TestDatabase | undefined;
const opened: OpenStorageResult[] = [];

function t(): TestDatabase {
  if (!testDb) throw new Error('no database');
  return testDb;
}

const paired: PairedBlobStore = { blobs: new MemoryBlobStore(), ready: async () => true, close: async () => undefined };

function config(databaseUrl: string, migrationUrl: string): PostgresStorageConfig {
  return {
    backend: 'postgres',
    dataDir: '/nonexistent-not-used-with-an-injected-blob-store',
    databaseUrl,
    migrationUrl,
    poolMax: 2,
    statementTimeoutMs: 10_000,
    reservationTtlSeconds: 60,
    blobs: { store: 'fs' },
  };
}

/** Opens, and remembers what opened so that afterEach closes it whatever the test asserted. */
async function open(databaseUrl: string, migrationUrl: string, logger: Logger = silentLogger()): Promise<OpenStorageResult> {
  const result = await openPostgresStorage(config(databaseUrl, migrationUrl), logger, paired);
  opened.push(result);
  return result;
}

function errorsOf(result: OpenStorageResult): string[] {
  if (result.ok) throw new Error('expected the storage to refuse to open');
  return result.errors;
}

beforeAll(async () => {
  testDb = await createTestDatabase();
}, 60_000);

afterEach(async () => {
  for (const result of opened.splice(0)) if (result.ok) await result.storage.close();
}, 60_000);

afterAll(async () => {
  await testDb?.drop();
}, 60_000);

test('a superuser as DATABASE_URL is refused', async () => {
  const errors = errorsOf(await open(t().adminUrl, t().migrationUrl));
  expect(errors).toContainEqual(expect.stringMatching(/^DATABASE_URL: role postgres is a superuser, .*connect as an app role \(NOSUPERUSER NOBYPASSRLS\)/));
  expect(errors.every((line) => line.startsWith('DATABASE_URL: '))).toBe(true);
});

test("the tables' owner as DATABASE_URL (and DATABASE_MIGRATION_URL) is refused", async () => {
  const errors = errorsOf(await open(t().migrationUrl, t().migrationUrl));
  expect(errors).toEqual([
    expect.stringMatching(
      new RegExp(`^DATABASE_URL: role ${t().ownerRole} owns the tables or is a member of their owner \\(sessions, .*\\); run migrations as a separate owner role \\(DATABASE_MIGRATION_URL\\) and connect the service as an app role$`),
    ),
  ]);
});

test("a member of the tables' owner role as DATABASE_URL is refused (it could turn the policies off)", async () => {
  await queryOnce(t().adminUrl, `GRANT ${t().ownerRole} TO ${t().appRole}`);
  try {
    const errors = errorsOf(await open(t().databaseUrl, t().migrationUrl));
    expect(errors).toEqual([expect.stringMatching(new RegExp(`^DATABASE_URL: role ${t().appRole} owns the tables or is a member of their owner`))]);
  } finally {
    await queryOnce(t().adminUrl, `REVOKE ${t().ownerRole} FROM ${t().appRole}`);
  }
});

test('an app role with BYPASSRLS is refused, and opens again once it has NOBYPASSRLS', async () => {
  await queryOnce(t().adminUrl, `ALTER ROLE ${t().appRole} BYPASSRLS`);
  try {
    const errors = errorsOf(await open(t().databaseUrl, t().migrationUrl));
    expect(errors).toEqual([`DATABASE_URL: role ${t().appRole} has BYPASSRLS; ALTER ROLE ${t().appRole} NOBYPASSRLS, or connect as an app role`]);
  } finally {
    await queryOnce(t().adminUrl, `ALTER ROLE ${t().appRole} NOBYPASSRLS`);
  }
  expect((await open(t().databaseUrl, t().migrationUrl)).ok).toBe(true);
});

test('the proper app role opens: ready, a cursor key, and a write as a user', async () => {
  const result = await open(t().databaseUrl, t().migrationUrl);
  if (!result.ok) throw new Error(result.errors.join('\n'));
  expect(await result.storage.ready()).toBe(true);
  expect((await result.storage.cursorKey()).length).toBe(32);
  expect(await result.storage.backend.usage('alice')).toEqual({ sessions: 0, files: 0, bytes: 0 });
});

describe('a URL with a password that cannot connect', () => {
  const password = 'Pa55-w0rd-that-must-not-leak';

  async function logged(run: (logger: Logger) => Promise<unknown>): Promise<string> {
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    (stream as Readable).on('data', (chunk: Buffer) => chunks.push(chunk));
    await run(createLogger({ level: 'debug', format: 'json' }, stream));
    return Buffer.concat(chunks).toString('utf8');
  }

  test('DATABASE_URL: an error line naming it, without the password', async () => {
    const port = await freePort();
    const url = `postgres://${t().appRole}:${password}@127.0.0.1:${port}/${t().name}`;
    let errors: string[] = [];
    const log = await logged(async (logger) => {
      errors = errorsOf(await open(url, t().migrationUrl, logger));
    });
    expect(errors).toEqual(['DATABASE_URL: cannot connect to the database (ECONNREFUSED)']);
    expect(log).not.toContain(password);
  });

  test('DATABASE_MIGRATION_URL: an error line naming it, without the password', async () => {
    const port = await freePort();
    const url = `postgres://${t().ownerRole}:${password}@127.0.0.1:${port}/${t().name}`;
    let errors: string[] = [];
    const log = await logged(async (logger) => {
      errors = errorsOf(await open(t().databaseUrl, url, logger));
    });
    expect(errors).toEqual(['DATABASE_MIGRATION_URL: cannot connect to the database (ECONNREFUSED)']);
    expect(log).not.toContain(password);
  });
});
