/**
 * Applies the numbered SQL files in migrations/ that the database has not seen, each in its
 * own transaction, recorded in schema_migrations, all under one advisory lock: replicas that
 * start together apply each file once, and the others wait and find nothing left to do. Runs
 * as the owner role; afterwards grants the app role what it needs and nothing more (no DDL,
 * no ownership, so row-level security always applies to it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, escapeIdentifier } from 'pg';

const MIGRATIONS_DIR = path.join(__dirname, 'migrations');
/** Any constant shared by every process of this service; "vault" in ASCII. */
const MIGRATION_LOCK = 0x7661756c74;

const APP_GRANTS = [
  'GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, messages, files, usage, upload_reservations TO %ROLE%',
  'GRANT SELECT, INSERT, UPDATE, DELETE ON blob_outbox TO %ROLE%',
  'GRANT SELECT, INSERT ON service_keys TO %ROLE%',
  // So that a replica connected only as the app role can see that there is nothing to apply.
  'GRANT SELECT ON schema_migrations TO %ROLE%',
];

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migration files in order; a name is `<number>_<words>.sql`. */
export function migrationFiles(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((name) => /^\d+_[a-z0-9_]+\.sql$/.test(name))
    .map((name) => ({ version: Number(name.split('_')[0]), name, sql: readFileSync(path.join(MIGRATIONS_DIR, name), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

export interface MigrationResult {
  applied: string[];
  /** The role migrations ran as (the tables' owner). */
  owner: string;
}

/**
 * Brings the schema up to date as the role of `migrationUrl` and grants `appRole` its rights.
 * When the two roles are the same nothing is granted: the app would own the tables, which the
 * role check at startup refuses.
 */
export async function migrate(migrationUrl: string, appRole: string, timeoutMs: number): Promise<MigrationResult> {
  const client = new Client({ connectionString: migrationUrl, connectionTimeoutMillis: timeoutMs, application_name: 'session-vault migrate' });
  await client.connect();
  try {
    // Up to date already (the usual start of a replica): nothing to take a lock for, and a role
    // that may not change the schema (the app role, when DATABASE_MIGRATION_URL is unset) is enough.
    const current = await upToDate(client);
    if (current) return { applied: [], owner: current.owner };
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer     PRIMARY KEY,
        name       text        NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      const applied: string[] = [];
      for (const migration of migrationFiles()) {
        if (done.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
        }
        applied.push(migration.name);
      }
      const owner = (await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]!.user;
      if (owner !== appRole) {
        for (const grant of APP_GRANTS) await client.query(grant.replace('%ROLE%', escapeIdentifier(appRole)));
      }
      return { applied, owner };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    await client.end();
  }
}

/** The tables' owner when every migration file is recorded and the connected role is not the owner; else null (work to do). */
async function upToDate(client: Client): Promise<{ owner: string } | null> {
  const { rows } = await client.query<{ owner: string | null; mine: boolean }>(
    `SELECT tableowner AS owner, pg_has_role(current_user, tableowner, 'MEMBER') AS mine
     FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`,
  );
  const table = rows[0];
  // The owner goes on to the grants (a new app role gets its rights at the next start).
  if (!table?.owner || table.mine) return null;
  const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
  return migrationFiles().every((m) => done.has(m.version)) ? { owner: table.owner } : null;
}
