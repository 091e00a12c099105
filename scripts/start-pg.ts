/**
 * `npm run start:pg`: the service on the PostgreSQL backend, for trying it on one machine.
 * It makes (once) the two roles and the database on the local PostgreSQL, as its superuser
 * over trust auth (PGADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres), starts
 * s3rver (a local S3, bytes under ./data/s3rver) on S3RVER_PORT (default 4569), and runs the
 * built service against both in development mode. Ctrl-C stops both.
 *
 * For a real deployment, create the roles and database as the README shows and set the
 * variables yourself: this script is only a shortcut for a machine where you are superuser.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import S3rver from 's3rver';

const ADMIN_URL = process.env.PGADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DATABASE = 'session_vault';
const OWNER = 'session_vault_owner';
const APP = 'session_vault_app';

async function ensureDatabase(): Promise<{ databaseUrl: string; migrationUrl: string }> {
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    for (const [role, options] of [
      [OWNER, 'LOGIN NOSUPERUSER NOBYPASSRLS'],
      [APP, 'LOGIN NOSUPERUSER NOBYPASSRLS'],
    ] as const) {
      const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (exists.rowCount === 0) await admin.query(`CREATE ROLE ${role} ${options}`);
    }
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE} OWNER ${OWNER}`);
  } finally {
    await admin.end();
  }
  const server = new URL(ADMIN_URL);
  const urlFor = (role: string) => `postgres://${role}@${server.host}/${DATABASE}`;
  return { databaseUrl: urlFor(APP), migrationUrl: urlFor(OWNER) };
}

async function main(): Promise<void> {
  const { databaseUrl, migrationUrl } = await ensureDatabase();
  const s3Directory = path.resolve('data', 's3rver');
  mkdirSync(s3Directory, { recursive: true });
  const s3 = new S3rver({ address: '127.0.0.1', port: Number(process.env.S3RVER_PORT ?? 4569), silent: true, directory: s3Directory });
  const { port } = await s3.run();
  process.stdout.write(`start:pg: database ${DATABASE} (roles ${OWNER}, ${APP}); s3rver on 127.0.0.1:${port}, bucket session-vault\n`);

  const service = spawn(process.execPath, ['dist/server.js'], {
    stdio: 'inherit',
    env: {
      ...process.env,
      STORAGE_BACKEND: 'postgres',
      DATABASE_URL: databaseUrl,
      DATABASE_MIGRATION_URL: migrationUrl,
      BLOB_STORE: 's3',
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_BUCKET: 'session-vault',
      S3_FORCE_PATH_STYLE: 'true',
      // s3rver accepts any credentials; these keep the SDK from looking for real ones.
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
    },
  });
  const stop = () => service.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  service.on('exit', (code) => {
    void s3.close().finally(() => process.exit(code ?? 0));
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`start:pg: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
