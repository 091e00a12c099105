/**
 * What the postgres groups run the service on: a fresh database (owner and app roles,
 * tests/helpers/postgres.ts) that the service migrates, and s3rver in a process of its own
 * with the bucket made. Both are the scope's to drop and stop.
 */
import { createTestDatabase, type TestDatabase } from '../helpers/postgres';
import { S3BlobStore } from '../../src/storage/s3/s3-blob-store';
import { baselineArgs, start, type Running } from './processes';
import type { scenarioScope } from './service';

/** The service's default DATABASE_POOL_MAX, given to the service and the bare baselines alike. */
export const POOL_MAX = 10;
export const BUCKET = 'session-vault-bench';
/** The only credentials s3rver accepts (it checks signatures). */
const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface PostgresStack {
  database: TestDatabase;
  s3: Running;
  /** The environment of a service on this database and this bucket. */
  serviceEnv: Record<string, string>;
}

/**
 * Like Promise.all, but settles only once every start has: whatever did start is in the scope
 * (to be stopped or dropped) before a failure of another reaches the scope's close.
 */
export async function allStarted<T extends readonly unknown[]>(starts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

export async function startPostgresStack(scope: ReturnType<typeof scenarioScope>): Promise<PostgresStack> {
  const [database, s3] = await allStarted([
    createTestDatabase().then((created) => {
      scope.defer(() => created.drop());
      return created;
    }),
    scope.track(start({ args: baselineArgs('s3rver'), env: { BENCH_DIR: await scope.dir('s3rver') } })),
  ] as const);
  // The service runs in production mode, where it never creates its bucket.
  const store = new S3BlobStore({
    endpoint: s3.url,
    region: 'us-east-1',
    bucket: BUCKET,
    ...S3_CREDENTIALS,
    forcePathStyle: true,
    partSize: 8 * 1024 * 1024,
  });
  try {
    await store.ensureBucket();
  } finally {
    store.close();
  }
  return {
    database,
    s3,
    serviceEnv: {
      STORAGE_BACKEND: 'postgres',
      DATABASE_URL: database.databaseUrl,
      DATABASE_MIGRATION_URL: database.migrationUrl,
      DATABASE_POOL_MAX: String(POOL_MAX),
      BLOB_STORE: 's3',
      S3_ENDPOINT: s3.url,
      S3_BUCKET: BUCKET,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    },
  };
}
