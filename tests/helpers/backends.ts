/**
 * The storage backends every backend-agnostic test runs against. Each entry gives the
 * environment that selects the backend on fresh, empty storage of its own, and removes that
 * storage afterwards. A new backend is one more entry here.
 */
import { rm } from 'node:fs/promises';
import { createTestDatabase } from './postgres';
import { startS3rver } from './s3rver';
import { makeTempDir } from './temp-dir';

export interface BackendUnderTest {
  /** The environment (STORAGE_BACKEND and its settings) selecting fresh storage. */
  env: Record<string, string>;
  /** The data directory, for settings every backend shares (the dev secret); never to look inside. */
  dataDir: string;
  tearDown(): Promise<void>;
}

export interface TestBackend {
  name: string;
  setUp(): Promise<BackendUnderTest>;
}

export const TEST_BACKENDS: TestBackend[] = [
  {
    name: 'fs',
    setUp: async () => {
      const dataDir = await makeTempDir();
      return { env: { STORAGE_BACKEND: 'fs', DATA_DIR: dataDir }, dataDir, tearDown: () => rm(dataDir, { recursive: true, force: true }) };
    },
  },
  {
    // A database of its own on the machine's PostgreSQL and an s3rver of its own; DATA_DIR
    // holds only the dev secret.
    name: 'postgres',
    setUp: async () => {
      const dataDir = await makeTempDir();
      const database = await createTestDatabase();
      const s3 = await startS3rver();
      const s3Settings = s3.settings('vault-test');
      return {
        env: {
          STORAGE_BACKEND: 'postgres',
          DATA_DIR: dataDir,
          DATABASE_URL: database.databaseUrl,
          DATABASE_MIGRATION_URL: database.migrationUrl,
          DATABASE_POOL_MAX: '5',
          BLOB_STORE: 's3',
          S3_ENDPOINT: s3.endpoint,
          S3_BUCKET: s3Settings.bucket,
          S3_REGION: s3Settings.region,
          S3_ACCESS_KEY_ID: s3Settings.accessKeyId!,
          S3_SECRET_ACCESS_KEY: s3Settings.secretAccessKey!,
          S3_FORCE_PATH_STYLE: 'true',
        },
        dataDir,
        tearDown: async () => {
          await Promise.allSettled([database.drop(), s3.stop()]);
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
];
