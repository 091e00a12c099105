/**
 * `npm run migrate`: applies the PostgreSQL backend's migrations (as DATABASE_MIGRATION_URL,
 * or DATABASE_URL) and grants the app role, without starting the server. The service does the
 * same at startup; this is for deployments that migrate in a step of their own.
 */
import { loadConfig } from '../config';
import { loadEnvFile } from '../env-file';
import { migrateStorage } from '../storage';

async function main(): Promise<void> {
  // The same `.env` the service reads, so the migration reaches the database the service uses.
  const envFile = loadEnvFile();
  if ('error' in envFile) {
    process.stderr.write(`migrate: ${envFile.error}\n`);
    process.exit(1);
  }
  const loaded = loadConfig(process.env);
  if (!loaded.ok) {
    for (const line of loaded.errors) process.stderr.write(`migrate: ${line}\n`);
    process.exit(1);
  }
  const result = await migrateStorage(loaded.config.storage);
  if (!result.ok) {
    for (const line of result.errors) process.stderr.write(`migrate: ${line}\n`);
    process.exit(1);
  }
  process.stdout.write(result.applied.length === 0 ? 'migrate: up to date\n' : `migrate: applied ${result.applied.join(', ')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`migrate: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
