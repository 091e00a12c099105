/**
 * One replica against N (`--replicas N`, default 2) on the same database, the same s3rver and
 * the machine's Redis, in the same run: what scaling out costs or gains on this machine.
 *
 * Every replica runs as a scaled-out deployment does (STORAGE_BACKEND=postgres, BLOB_STORE=s3,
 * RATE_LIMIT_STORE=redis), each with its own pool of POOL_MAX connections, and they start at
 * once (the migrations' advisory lock decides which one applies them). The N-replica side deals
 * the same 50 connections out over the replicas in turn, as a round-robin proxy would (no
 * proxy in between, so neither side pays for one); the 1-replica side is the first of them.
 * A third side, one more replica counting its limits in memory, shows what the Redis round
 * trips cost. Rows: GET of one session, PATCH with If-Match and message appends, both by 50
 * users with a session each.
 *
 * No row has a target: what N replicas give depends on the cores. One replica runs its
 * JavaScript on one core; a second may use another, but on a small machine it shares them with
 * PostgreSQL, s3rver and the load generator, and adds work of its own (another event loop,
 * another pool), so the rows show how much of a speed-up, or what overhead, this machine
 * gives. The row says how many cores ran it.
 */
import os from 'node:os';
import { createClient } from 'redis';
import { json, measureSides, type LoadResult, type RequestSpec, type Side } from '../load';
import type { BenchOptions } from '../options';
import { startPostgresStack } from '../postgres-stack';
import type { Row } from '../report';
import { bearer, scenarioScope, startService, type Service } from '../service';
import { STATE_1KB } from '../session-reads';
import { versionedWriters } from '../versioned-writers';

const MESSAGE = { role: 'user', content: 'y'.repeat(200) };
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Fails at once, naming the URL, where the bench's Redis does not answer. */
async function requireRedis(url: string): Promise<void> {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new Error(`the replicas group counts rate limits in Redis at ${url} (BENCH_REDIS_URL), which did not answer: ${String(error)}`, { cause: error });
  } finally {
    client.destroy();
  }
}

function rate(result: LoadResult): string {
  return `${result.requestsPerSecond.toFixed(0)} req/s`;
}

export async function replicaScenarios(options: BenchOptions): Promise<Row[]> {
  await requireRedis(BENCH_REDIS_URL);
  const rows: Row[] = [];
  const scope = scenarioScope();
  const n = options.replicas;
  try {
    const { serviceEnv } = await startPostgresStack(scope);
    const replicaEnv = { ...serviceEnv, RATE_LIMIT_STORE: 'redis', REDIS_URL: BENCH_REDIS_URL };
    const started: Array<Promise<Service>> = Array.from({ length: n }, async (_, i) =>
      scope.track(startService(await scope.dir(`replica-${i}`), replicaEnv)),
    );
    // Started after the others have migrated the database (it would wait on their lock anyway).
    const replicas = await Promise.all(started);
    const inMemory = await scope.track(startService(await scope.dir('replica-memory'), serviceEnv));
    const one = replicas[0]!;

    const measureOptions = {
      ...options,
      runs: options.postgresRuns,
      warmUpSeconds: options.quick ? 0 : options.warmUpSeconds,
    };
    const row = async (scenario: string, request: Side['request'], prepare?: () => Promise<void>): Promise<Row> => {
      const side = (target: Side['target']): Side => ({ target, request, ...(prepare ? { prepare } : {}) });
      const [many, single, memory] = await measureSides(measureOptions, [side(replicas), side(one), side(inMemory)]);
      const ratio = many!.requestsPerSecond / single!.requestsPerSecond;
      const errors = many!.errors + single!.errors + memory!.errors;
      return {
        scenario: `replicas: ${scenario}, ${n} replicas against 1 on the same database`,
        unit: 'req/s',
        value: many!.requestsPerSecond,
        p50Ms: many!.p50Ms,
        p99Ms: many!.p99Ms,
        errors,
        baseline: { name: '1 replica (Redis limits)', value: single!.requestsPerSecond },
        ratio,
        extra:
          `1 replica counting its limits in memory: ${rate(memory!)} ` +
          `(with Redis, ${((single!.requestsPerSecond / memory!.requestsPerSecond) * 100).toFixed(0)}% of it)`,
        target: `reported only (${os.cpus().length} cores shared by the replicas, PostgreSQL, s3rver and the load generator)`,
        met: errors === 0,
      };
    };

    // (a) GET of one session, every connection as one user.
    const reader = await one.call<{ id: string }>('rep-reader', 'POST', '/api/v1/sessions', { title: 'read me', state: STATE_1KB });
    const get: RequestSpec = json('GET', `/api/v1/sessions/${reader.id}`, bearer('rep-reader'));
    rows.push(await row('GET /api/v1/sessions/:id (1 KB state)', () => get));

    // (b) PATCH with If-Match: each connection its own user and session. Every side reaches the
    // same rows, so each re-reads the versions the last one left.
    const { writer, versioned, reread } = await versionedWriters(one, 'rep-writer', options.writers);
    rows.push(
      await row(
        `PATCH /api/v1/sessions/:id with If-Match (${options.writers} users)`,
        (c) => versioned(c, json('PATCH', `/api/v1/sessions/${writer(c).id}`, bearer(writer(c).user), { state: STATE_1KB })),
        reread,
      ),
    );

    // (c) Message appends: each connection its own user and session.
    const chats = await Promise.all(
      Array.from({ length: options.writers }, async (_, i) => {
        const user = `rep-chatter-${i}`;
        const created = await one.call<{ id: string }>(user, 'POST', '/api/v1/sessions', { title: 'chat' });
        return json('POST', `/api/v1/sessions/${created.id}/messages`, bearer(user), MESSAGE);
      }),
    );
    rows.push(await row(`POST /api/v1/sessions/:id/messages (${options.writers} users)`, (c) => chats[c % chats.length]!));
  } finally {
    await scope.close();
  }
  return rows;
}
