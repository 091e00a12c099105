/**
 * Starting on PostgreSQL as an operator does: `npm run migrate` on its own, then the built
 * service, which refuses a role row-level security would not hold and says what to do, and
 * names a database it cannot reach by its variable, never printing a password.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../helpers/free-port';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { logLines, runToExit, startServer } from '../helpers/server-process';
import { makeTempDir } from '../helpers/temp-dir';

const ROOT = path.join(__dirname, '..', '..');
const PASSWORD = 'Pa55-w0rd-never-printed';

let database: TestDatabase;
let dataDir: string;

beforeEach(async () => {
  database = await createTestDatabase();
  dataDir = await makeTempDir();
}, 60_000);

afterEach(async () => {
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
}, 60_000);

/** The service on postgres with its bytes under DATA_DIR (no S3 needed for what is checked here). */
function env(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    STORAGE_BACKEND: 'postgres',
    BLOB_STORE: 'fs',
    DATA_DIR: dataDir,
    DATABASE_URL: database.databaseUrl,
    DATABASE_MIGRATION_URL: database.migrationUrl,
    ...overrides,
  };
}

function runMigrate(variables: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'migrate.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...variables },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('npm run migrate applies the migrations once, then finds the schema up to date; the service then starts without applying any', async () => {
  const first = await runMigrate(env());
  expect(first).toMatchObject({ code: 0, stdout: 'migrate: applied 001_sessions.sql\n' });
  const again = await runMigrate(env());
  expect(again).toMatchObject({ code: 0, stdout: 'migrate: up to date\n' });

  const server = await startServer(env());
  try {
    const lines = logLines(server.stdout());
    expect(lines.find((l) => l.message === 'database migrations')).toMatchObject({ applied: [] });
    expect(lines.find((l) => l.message === 'legacy cleanup')).toMatchObject({ mode: 'off' });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  } finally {
    await server.stop();
  }
}, 120_000);

test('npm run migrate on the filesystem backend, or on a database it cannot reach, exits 1 with a line naming the variable and no password', async () => {
  const onFs = await runMigrate({ STORAGE_BACKEND: 'fs', DATA_DIR: dataDir });
  expect(onFs.code).toBe(1);
  expect(onFs.stderr).toBe('migrate: STORAGE_BACKEND: the filesystem backend has no migrations (set STORAGE_BACKEND=postgres)\n');

  const port = await freePort();
  const unreachable = await runMigrate(env({ DATABASE_MIGRATION_URL: `postgres://${database.ownerRole}:${PASSWORD}@127.0.0.1:${port}/${database.name}` }));
  expect(unreachable.code).toBe(1);
  expect(unreachable.stderr).toBe('migrate: DATABASE_MIGRATION_URL: cannot connect to the database (ECONNREFUSED)\n');
  expect(unreachable.stdout + unreachable.stderr).not.toContain(PASSWORD);
}, 120_000);

test('the service exits 1 before listening as a superuser or as the owner role, saying what to connect as instead', async () => {
  const asSuperuser = await runToExit(env({ DATABASE_URL: database.adminUrl }), 60_000);
  expect(asSuperuser.code).toBe(1);
  expect(asSuperuser.stderr).toMatch(/^session-vault: DATABASE_URL: role postgres is a superuser, .*connect as an app role/m);

  const asOwner = await runToExit(env({ DATABASE_URL: database.migrationUrl }), 60_000);
  expect(asOwner.code).toBe(1);
  expect(asOwner.stderr).toMatch(new RegExp(`^session-vault: DATABASE_URL: role ${database.ownerRole} owns the tables`, 'm'));
  expect(asSuperuser.stdout + asOwner.stdout).not.toMatch(/"listening"/);
}, 120_000);

test('the service exits 1 naming DATABASE_URL when it cannot reach the database, never printing the password', async () => {
  const port = await freePort();
  const result = await runToExit(
    env({ DATABASE_URL: `postgres://${database.appRole}:${PASSWORD}@127.0.0.1:${port}/${database.name}`, DATABASE_STATEMENT_TIMEOUT_MS: '2000' }),
    60_000,
  );
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^session-vault: DATABASE_URL: cannot connect to the database \(ECONNREFUSED\)$/m);
  expect(result.stdout + result.stderr).not.toContain(PASSWORD);
}, 120_000);

test('in production with a bucket that cannot be reached, the service starts, says so once, and is not ready', async () => {
  const port = await freePort();
  const server = await startServer(
    env({
      NODE_ENV: 'production',
      JWT_SECRET: 'x'.repeat(40),
      BLOB_STORE: 's3',
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_BUCKET: 'vault-missing',
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
    }),
    60_000,
  );
  try {
    const warnings = logLines(server.stdout()).filter((l) => l.message === 'blob store not ready');
    expect(warnings).toEqual([expect.objectContaining({ level: 'warn', bucket: 'vault-missing' })]);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  } finally {
    await server.stop();
  }
}, 120_000);
