/**
 * Opening the PostgreSQL backend: apply migrations as the owner role (under the advisory
 * lock), connect the pool as the app role and refuse to serve if row-level security would
 * not hold it, then start the background work (sweeper, outbox). Closing stops that work and
 * ends the pool. The blob store it pairs with is opened by the caller (storage/index.ts).
 */
import { randomBytes } from 'node:crypto';
import type { PostgresStorageConfig } from '../../config';
import type { Logger } from '../../logger';
import type { BlobStore } from '../../sessions/ports';
import type { OpenedStorage, OpenStorageResult } from '../opened-storage';
import { throttledProbe } from '../throttled-probe';
import { Database, isUnavailable } from './database';
import { Maintenance } from './maintenance';
import { migrate } from './migrate';
import { PgBackend } from './pg-backend';
import { roleProblems } from './role-check';

/** A blob store as this backend pairs with it: the port, and whether it can be reached. */
export interface PairedBlobStore {
  blobs: BlobStore;
  ready(): Promise<boolean>;
  /** Lets go of its connections, after the backend's own work has stopped. */
  close(): Promise<void>;
}

export interface PostgresOpenedStorage extends OpenedStorage {
  /** The background work, in reach for tests: sweep and drain now rather than on the timer. */
  readonly maintenance: Maintenance;
}

const OUTBOX_INTERVAL_MS = 1000;
const READY_PROBE_INTERVAL_MS = 1000;

/** The user name in a connection URL, never the password. */
function roleOf(url: string): string {
  return decodeURIComponent(new URL(url).username) || process.env.PGUSER || process.env.USER || '';
}

function unreachable(variable: string, error: unknown): { ok: false; errors: string[] } {
  const failure = error as { code?: unknown; cause?: { code?: unknown } };
  const code = failure.cause?.code ?? failure.code;
  return { ok: false, errors: [`${variable}: cannot connect to the database (${typeof code === 'string' ? code : 'unreachable'})`] };
}

/** Applies the migrations, with failures as lines naming the variable (never the URL itself). */
export async function runMigrations(
  config: PostgresStorageConfig,
): Promise<{ ok: true; applied: string[]; owner: string } | { ok: false; errors: string[] }> {
  try {
    return { ok: true, ...(await migrate(config.migrationUrl, roleOf(config.databaseUrl), config.statementTimeoutMs)) };
  } catch (error) {
    if (isUnavailable(error)) return unreachable('DATABASE_MIGRATION_URL', error);
    return { ok: false, errors: [`DATABASE_MIGRATION_URL: ${(error as Error).message}`] };
  }
}

export async function openPostgresStorage(config: PostgresStorageConfig, logger: Logger, paired: PairedBlobStore): Promise<OpenStorageResult> {
  logger.info('legacy cleanup', { category: 'cleanup', mode: 'off', reason: 'a filesystem concern; it does not run with STORAGE_BACKEND=postgres' });
  const migrated = await runMigrations(config);
  if (!migrated.ok) return migrated;
  logger.info('database migrations', { applied: migrated.applied, owner: migrated.owner });

  const db = new Database({ url: config.databaseUrl, poolMax: config.poolMax, statementTimeoutMs: config.statementTimeoutMs });
  let problems: string[];
  try {
    problems = await db.asService((sql) => roleProblems(sql));
  } catch (error) {
    await db.close();
    return unreachable('DATABASE_URL', error);
  }
  if (problems.length > 0) {
    await db.close();
    return { ok: false, errors: problems };
  }

  const maintenance = new Maintenance(db, paired.blobs, logger);
  maintenance.start({ outboxMs: OUTBOX_INTERVAL_MS, sweepMs: Math.min(30_000, (config.reservationTtlSeconds * 1000) / 2) });
  let closed: Promise<void> | undefined;
  const storage: PostgresOpenedStorage = {
    backend: new PgBackend(db, config.reservationTtlSeconds),
    blobs: paired.blobs,
    cursorKey: () => cursorKey(db),
    ready: throttledProbe(async () => (await databaseReachable(db)) && (await paired.ready()), READY_PROBE_INTERVAL_MS),
    close: () => {
      closed ??= maintenance.stop().then(async () => {
        await db.close();
        await paired.close();
      });
      return closed;
    },
    location: { database: new URL(config.databaseUrl).host + new URL(config.databaseUrl).pathname, blobStore: config.blobs.store },
    maintenance,
  };
  return { ok: true, storage };
}

/** The key every process signs listing cursors with, made once by whichever process comes first. */
async function cursorKey(db: Database): Promise<Buffer> {
  return db.asService(async (sql) => {
    await sql.query("INSERT INTO service_keys (name, key) VALUES ('cursor', $1) ON CONFLICT (name) DO NOTHING", [randomBytes(32)]);
    const { rows } = await sql.query<{ key: Buffer }>("SELECT key FROM service_keys WHERE name = 'cursor'");
    return rows[0]!.key;
  });
}

async function databaseReachable(db: Database): Promise<boolean> {
  try {
    await db.asService((sql) => sql.query('SELECT 1'));
    return true;
  } catch {
    return false;
  }
}
