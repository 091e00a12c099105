/**
 * A fresh database of its own for a test file, on the machine's PostgreSQL (127.0.0.1:5432,
 * trust auth): an owner role that runs migrations, an app role the service connects as
 * (neither a superuser nor BYPASSRLS), and a database the owner owns, all with a random
 * suffix so that test files running at once never share one. `drop` removes all three.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

const HOST = process.env.TEST_PGHOST ?? '127.0.0.1';
const PORT = Number(process.env.TEST_PGPORT ?? 5432);
const ADMIN_USER = process.env.TEST_PGUSER ?? 'postgres';

export interface TestDatabase {
  name: string;
  ownerRole: string;
  appRole: string;
  /** The app role's URL (DATABASE_URL). */
  databaseUrl: string;
  /** The owner role's URL (DATABASE_MIGRATION_URL). */
  migrationUrl: string;
  /** A superuser's URL on the same database, for tests that inspect or break things on purpose. */
  adminUrl: string;
  drop(): Promise<void>;
}

function url(user: string, database: string): string {
  return `postgres://${encodeURIComponent(user)}@${HOST}:${PORT}/${database}`;
}

async function asAdmin<T>(database: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url(ADMIN_USER, database) });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const suffix = randomBytes(6).toString('hex');
  const name = `vault_test_${suffix}`;
  const ownerRole = `vault_owner_${suffix}`;
  const appRole = `vault_app_${suffix}`;
  await asAdmin('postgres', async (client) => {
    await client.query(`CREATE ROLE ${ownerRole} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`);
    await client.query(`CREATE ROLE ${appRole} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`);
    await client.query(`CREATE DATABASE ${name} OWNER ${ownerRole}`);
  });
  return {
    name,
    ownerRole,
    appRole,
    databaseUrl: url(appRole, name),
    migrationUrl: url(ownerRole, name),
    adminUrl: url(ADMIN_USER, name),
    drop: () =>
      asAdmin('postgres', async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await client.query(`DROP ROLE IF EXISTS ${appRole}`);
        await client.query(`DROP ROLE IF EXISTS ${ownerRole}`);
      }),
  };
}

/** One query on its own connection, for a look from outside (usually as the superuser, `adminUrl`). */
export async function queryOnce<R extends Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}
