/**
 * The background work that recovers what dead processes leave: an upload reservation that
 * stops being extended expires and is swept (its quota given back, its bytes queued in the
 * outbox), and the outbox worker deletes queued bytes through the blob store. Two workers at
 * once, as two replicas, never give a reservation back twice nor delete a blob twice; a
 * delete the blob store fails leaves its rows queued for the next round.
 *
 * Expiry is real (a 2 s TTL) and waited for by polling the database's clock.
 */
import { silentLogger } from '../../../src/logger';
import type { Database } from '../../../src/storage/postgres/database';
import { Maintenance } from '../../../src/storage/postgres/maintenance';
import { migrate } from '../../../src/storage/postgres/migrate';
import { PgBackend } from '../../../src/storage/postgres/pg-backend';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres';
import { abandonUpload, connect, createSession, MemoryBlobStore, openDatabase, queryOnce, uploadFile, waitFor } from './fixtures';

const TTL_SECONDS = 2;

let testDb: TestDatabase | undefined;
const databases: Database[] = [];

function t(): TestDatabase {
  if (!testDb) throw new Error('no database');
  return testDb;
}

/** A pool of its own, as each replica has. */
function replicaDatabase(): Database {
  const db = openDatabase(t().databaseUrl);
  databases.push(db);
  return db;
}

async function usageOf(userId: string): Promise<{ bytes: number; reserved: number }> {
  const [row] = await queryOnce<{ bytes: string; reserved: string }>(t().adminUrl, 'SELECT bytes, reserved FROM usage WHERE user_id = $1', [userId]);
  return { bytes: Number(row?.bytes), reserved: Number(row?.reserved) };
}

async function outbox(): Promise<{ user_id: string; session_id: string; file_id: string }[]> {
  return queryOnce(t().adminUrl, 'SELECT user_id, session_id, file_id FROM blob_outbox ORDER BY file_id');
}

/** Waits until the database's own clock has passed every reservation's expiry. */
async function waitUntilAllExpired(): Promise<void> {
  await waitFor(
    async () => (await queryOnce(t().adminUrl, 'SELECT 1 FROM upload_reservations WHERE expires_at >= now()')).length === 0,
    'every upload reservation to expire',
  );
}

beforeEach(async () => {
  testDb = await createTestDatabase();
  await migrate(testDb.migrationUrl, testDb.appRole, 10_000);
}, 60_000);

afterEach(async () => {
  for (const db of databases.splice(0)) await db.close();
  await testDb?.drop();
  testDb = undefined;
}, 60_000);

test('an abandoned upload is swept once it expires: quota given back, bytes queued, then deleted by the outbox worker', async () => {
  const db = replicaDatabase();
  const backend = new PgBackend(db, TTL_SECONDS);
  const blobs = new MemoryBlobStore();
  const maintenance = new Maintenance(db, blobs, silentLogger());
  const sessionId = await createSession(backend, 'alice', 'uploads');
  const before = await usageOf('alice');

  const [fileId] = await abandonUpload(backend, 'alice', sessionId, 1, 1000);
  const ref = { userId: 'alice', sessionId, fileId: fileId! };
  blobs.plant(ref);
  const held = await usageOf('alice');
  expect(held.reserved).toBeGreaterThan(1000);
  expect(held.bytes).toBe(before.bytes);

  // Not yet expired: the sweeper leaves it alone. (If the row is still unexpired after the
  // sweep by the database's clock, it was unexpired during it.)
  expect(await maintenance.sweepExpired()).toBe(0);
  expect(await queryOnce(t().adminUrl, 'SELECT 1 FROM upload_reservations WHERE expires_at >= now()')).toHaveLength(1);
  expect((await usageOf('alice')).reserved).toBe(held.reserved);

  await waitUntilAllExpired();
  expect(await maintenance.sweepExpired()).toBe(1);
  expect(await usageOf('alice')).toEqual({ bytes: before.bytes, reserved: 0 });
  expect(await queryOnce(t().adminUrl, 'SELECT 1 FROM upload_reservations')).toHaveLength(0);
  expect(await outbox()).toEqual([{ user_id: 'alice', session_id: sessionId, file_id: fileId }]);
  expect(blobs.has(ref)).toBe(true);

  expect(await maintenance.drainOutbox()).toBe(1);
  expect(blobs.deletes).toEqual([ref]);
  expect(blobs.has(ref)).toBe(false);
  expect(await outbox()).toEqual([]);
  expect(await maintenance.sweepExpired()).toBe(0);
  expect(await maintenance.drainOutbox()).toBe(0);
}, 60_000);

test('two replicas sweeping and draining at once give each reservation back once and delete each blob once', async () => {
  const users = ['alice', 'bob', 'carol'];
  const setupDb = replicaDatabase();
  const backend = new PgBackend(setupDb, TTL_SECONDS);
  const blobs = new MemoryBlobStore(2);
  const expectedRefs: string[] = [];
  // 3 users x 3 uploads x 20 files: more reservations and outbox rows than fit in one batch
  // of either worker, so the two compete for rows rather than one finishing before the other starts.
  await Promise.all(
    users.map(async (user) => {
      const sessionId = await createSession(backend, user, 'uploads');
      for (let upload = 0; upload < 3; upload += 1) {
        const ids = await abandonUpload(backend, user, sessionId, 20, 10);
        for (const fileId of ids) {
          blobs.plant({ userId: user, sessionId, fileId });
          expectedRefs.push(fileId);
        }
      }
    }),
  );
  expect((await queryOnce(t().adminUrl, 'SELECT 1 FROM upload_reservations')).length).toBe(9);
  await waitUntilAllExpired();

  const replicas = [0, 1].map(() => new Maintenance(replicaDatabase(), blobs, silentLogger()));
  let lowestReserved = Infinity;
  let sampling = true;
  // Usage seen from outside while the sweepers run: a reservation given back twice would show
  // as reserved below zero, if only for a moment.
  const observer = await connect(t().adminUrl);
  const sampler = (async () => {
    while (sampling) {
      const { rows } = await observer.query<{ min: string }>('SELECT min(reserved) AS min FROM usage');
      lowestReserved = Math.min(lowestReserved, Number(rows[0]?.min));
    }
  })();
  let swept: number[];
  try {
    swept = await Promise.all(replicas.flatMap((m) => [m.sweepExpired(), m.sweepExpired()]));
  } finally {
    sampling = false;
    await sampler;
    await observer.end();
  }
  expect(swept.reduce((a, b) => a + b, 0)).toBe(9);
  expect(lowestReserved).toBeGreaterThanOrEqual(0);
  for (const user of users) expect((await usageOf(user)).reserved).toBe(0);
  expect(await outbox()).toHaveLength(expectedRefs.length);

  // drainAll, counting what each worker took.
  const drained = await Promise.all(
    replicas.map(async (m) => {
      let total = 0;
      for (let n = await m.drainOutbox(); n > 0; n = await m.drainOutbox()) total += n;
      return total;
    }),
  );
  expect(drained[0]! + drained[1]!).toBe(expectedRefs.length);
  // Both took rows: the claims really did overlap, rather than one worker draining everything.
  expect(drained.every((n) => n > 0)).toBe(true);
  expect(await outbox()).toEqual([]);
  const counts = blobs.deleteCounts();
  expect([...counts.keys()].sort()).toEqual([...expectedRefs].sort());
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
  expect(blobs.blobs.size).toBe(0);
}, 60_000);

test('a blob the store fails to delete stays queued, with its batch, until a later round succeeds', async () => {
  const db = replicaDatabase();
  const backend = new PgBackend(db, 600);
  const blobs = new MemoryBlobStore();
  const maintenance = new Maintenance(db, blobs, silentLogger());
  const sessionId = await createSession(backend, 'alice', 'files');
  const files = [];
  for (const name of ['a.txt', 'b.txt', 'c.txt']) {
    const record = await uploadFile(backend, 'alice', sessionId, name, Buffer.from(name));
    blobs.plant({ userId: 'alice', sessionId, fileId: record.id });
    files.push(record);
  }
  for (const file of files) expect(await backend.deleteFile('alice', sessionId, file.id)).toBe(true);
  const queued = await outbox();
  expect(queued).toHaveLength(3);

  blobs.failDeletesOf.add(files[1]!.id);
  await expect(maintenance.drainOutbox()).rejects.toThrow(/object store unavailable/);
  expect(await outbox()).toEqual(queued);
  expect(blobs.has({ userId: 'alice', sessionId, fileId: files[1]!.id })).toBe(true);

  // The store recovers: the next round deletes what is left (deleting again what was already
  // gone is harmless, the ids are never reused).
  blobs.failDeletesOf.clear();
  expect(await maintenance.drainOutbox()).toBe(3);
  expect(await outbox()).toEqual([]);
  expect(blobs.blobs.size).toBe(0);
  expect(new Set(blobs.deletes.map((r) => r.fileId))).toEqual(new Set(files.map((f) => f.id)));
}, 60_000);
