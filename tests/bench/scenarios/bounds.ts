/**
 * Resource bounds, measured: what a session that already holds many files costs an upload
 * and a listing (against a session holding few), what a page from the middle of a very long
 * message log costs in latency and memory with many readers at once, and how resident
 * memory behaves as a great many distinct users each make one request.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import { forEachLimited } from '../../../src/storage/fs/for-each-limited';
import { MESSAGE_LOG, SESSION_DOCUMENT, DataPaths } from '../../../src/storage/fs/paths';
import { multipart, filePart } from '../../helpers/multipart';
import { memoryOf } from '../../helpers/process-memory';
import { json, measurePair, runLoad, type RequestSpec } from '../load';
import type { BenchOptions } from '../options';
import { rssGrowthDuring, type Running } from '../processes';
import { ratioRow, type Row } from '../report';
import { bearer, scenarioScope, startService, tokenFor, type Service } from '../service';

const MiB = 1024 * 1024;

interface Created {
  id: string;
}

/** One small text file as a multipart body, the same bytes for every upload. */
function smallUpload(path: string, headers: Record<string, string>): RequestSpec {
  const body = multipart([filePart('note.txt', 'text/plain', 'a small note\n')]);
  return { method: 'POST', path, headers: { ...headers, 'Content-Type': body.contentType }, body: body.body.toString('latin1') };
}

async function sessionWithFiles(service: Service, userId: string, files: number): Promise<string> {
  const { id } = await service.call<Created>(userId, 'POST', '/api/v1/sessions', { title: `${files} files` });
  await forEachLimited(
    Array.from({ length: Math.ceil(files / 10) }, (_, batch) => batch),
    4,
    async (batch) => {
      const count = Math.min(10, files - batch * 10);
      const body = multipart(Array.from({ length: count }, (_, i) => filePart(`f${batch * 10 + i}.txt`, 'text/plain', `file ${batch}-${i}\n`)));
      const res = await fetch(`${service.url}/api/v1/sessions/${id}/files`, {
        method: 'POST',
        headers: { ...bearer(userId), 'Content-Type': body.contentType },
        body: body.body,
      });
      if (res.status !== 201) throw new Error(`fixture upload: ${res.status} ${await res.text()}`);
    },
  );
  return id;
}

/**
 * A session whose message log holds about `bytes` of messages, written straight to disk in
 * the service's format before the service starts (appending a gigabyte through the API
 * would take many minutes). Returns the session id and how many messages it holds.
 */
export async function writeLongLog(dataDir: string, userId: string, bytes: number): Promise<{ sessionId: string; messages: number }> {
  const paths = new DataPaths(dataDir);
  const sessionId = randomUUID();
  await fs.mkdir(paths.sessionDir(userId, sessionId), { recursive: true });
  const at = '2026-01-01T00:00:00.000Z';
  await fs.writeFile(
    paths.sessionFile(userId, sessionId, SESSION_DOCUMENT),
    JSON.stringify({ id: sessionId, title: 'long history', createdAt: at, updatedAt: at, version: 1, state: {} }),
  );
  const handle = await fs.open(paths.sessionFile(userId, sessionId, MESSAGE_LOG), 'w');
  const content = 'z'.repeat(900);
  let seq = 0;
  let written = 0;
  try {
    while (written < bytes) {
      const lines: string[] = [];
      for (let i = 0; i < 1000; i++) {
        seq += 1;
        lines.push(JSON.stringify({ id: randomUUID(), seq, role: 'user', content, metadata: {}, createdAt: at }));
      }
      const chunk = `${lines.join('\n')}\n`;
      await handle.write(chunk);
      written += Buffer.byteLength(chunk);
    }
  } finally {
    await handle.close();
  }
  return { sessionId, messages: seq };
}

/** `users` distinct users each make one GET /me, 50 at a time; RSS is read after each quarter. */
async function distinctUsers(service: Service, users: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  const samples: number[] = [];
  const quarter = Math.ceil(users / 4);
  try {
    for (let q = 0; q < 4; q++) {
      const ids = Array.from({ length: Math.min(quarter, users - q * quarter) }, (_, i) => `visitor-${q * quarter + i}`);
      await forEachLimited(ids, 50, (userId) => getStatus(`${service.url}/api/v1/me`, agent, tokenFor(userId)));
      samples.push((await memoryOf(service.pid)).rss);
    }
  } finally {
    agent.destroy();
  }
  return samples;
}

function getStatus(url: string, agent: http.Agent, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers: { Authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`GET /me: ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

export async function boundScenarios(options: BenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const scope = scenarioScope();
  const load = (target: Running, request: (connection: number) => RequestSpec, seconds: number, connections = options.connections) => () =>
    runLoad({ url: target.url, connections, seconds, request });

  try {
    // Uploads and listings in a session of 1,000 files against one of few: with an appended
    // journal line per upload and a paged listing, neither depends on the files already there.
    const service = await scope.track(startService(await scope.dir('files'), { MAX_FILES_PER_SESSION: '1000000', MAX_CONCURRENT_UPLOADS: '1000' }));
    const full = await sessionWithFiles(service, 'filer', 1000);
    const few = await sessionWithFiles(service, 'filer', 100);
    const empty = (await service.call<Created>('filer', 'POST', '/api/v1/sessions', { title: 'empty' })).id;
    const uploadTo = (sessionId: string) => () => smallUpload(`/api/v1/sessions/${sessionId}/files`, bearer('filer'));
    const listOf = (sessionId: string) => () => json('GET', `/api/v1/sessions/${sessionId}/files?limit=100`, bearer('filer'));
    const inService = (request: (connection: number) => RequestSpec) => ({ target: service, request });
    rows.push(
      ratioRow(
        'POST files: one small file into a session holding 1,000+ files',
        await measurePair(options, inService(uploadTo(full)), inService(uploadTo(empty))),
        'the same into an empty session',
        0.8,
        '>= 80% of the same into an empty session',
      ),
      ratioRow(
        'GET files?limit=100 of a session holding 1,000+ files',
        await measurePair(options, inService(listOf(full)), inService(listOf(few))),
        'the same page of a session of 100',
        0.8,
        '>= 80% of the same page of a session of 100',
      ),
    );
    await service.stop();

    // A page from the middle of a very long message log, many readers at once; the same pages
    // of a short log show what of the memory growth is the log's and what the request rate's.
    const readers = 20;
    const pagesOf = async (bytes: number) => {
      const logDir = await scope.dir('log');
      const { sessionId, messages } = await writeLongLog(logDir, 'historian', bytes);
      const reader = await scope.track(startService(logDir));
      const firstStarted = performance.now();
      await reader.call('historian', 'GET', `/api/v1/sessions/${sessionId}/messages?limit=1`);
      const firstMs = performance.now() - firstStarted;
      const middle = Math.max(0, Math.floor(messages / 2) - 60);
      const pageAt = (connection: number) =>
        json('GET', `/api/v1/sessions/${sessionId}/messages?after=${middle - (connection % 5) * 10}&limit=50`, bearer('historian'));
      await load(reader, pageAt, options.warmUpSeconds, readers)();
      const measured = await rssGrowthDuring(reader.pid, load(reader, pageAt, options.seconds * 2, readers));
      await reader.stop();
      return { ...measured, firstMs, growthMiB: measured.growthBytes / MiB };
    };
    const logBytes = options.quick ? 64 * MiB : 1024 * MiB;
    const long = await pagesOf(logBytes);
    const short = await pagesOf(MiB);
    rows.push({
      scenario: `GET messages?limit=50 from the middle of a ${Math.round(logBytes / MiB).toLocaleString('en')} MiB log, ${readers} readers`,
      unit: 'req/s',
      value: long.result.requestsPerSecond,
      p50Ms: long.result.p50Ms,
      p99Ms: long.result.p99Ms,
      errors: long.result.errors,
      baseline: { name: 'the same pages of a 1 MiB log', value: short.result.requestsPerSecond },
      ratio: long.result.requestsPerSecond / short.result.requestsPerSecond,
      extra: `RSS growth ${long.growthMiB.toFixed(1)} MB (1 MiB log: ${short.growthMiB.toFixed(1)} MB); first page after start (one scan of the log) ${long.firstMs.toFixed(0)} ms`,
      target: 'p50 <= 20 ms; RSS growth <= 32 MB',
      met: long.result.p50Ms <= 20 && long.growthMiB <= 32 && long.result.errors === 0,
    });

    // Many distinct users, one request each: per-user state is evicted beyond its budget.
    const users = options.quick ? 20_000 : 100_000;
    const budget = options.quick ? 4 * MiB : 16 * MiB;
    const crowd = await scope.track(startService(await scope.dir('crowd'), { USER_INDEX_CACHE_BYTES: String(budget), RATE_LIMIT_WINDOW_MS: '1000' }));
    const idle = (await memoryOf(crowd.pid)).rss;
    const started = performance.now();
    const samples = await distinctUsers(crowd, users);
    const seconds = (performance.now() - started) / 1000;
    const half = samples[1]!;
    const last = samples[3]!;
    const flat = last <= half * 1.1;
    rows.push({
      scenario: `${users.toLocaleString('en')} distinct users, one GET /me each (USER_INDEX_CACHE_BYTES ${budget / MiB} MiB)`,
      unit: 'req/s',
      value: users / seconds,
      extra: `RSS idle ${(idle / MiB).toFixed(0)} MB; after each quarter ${samples.map((s) => (s / MiB).toFixed(0)).join(' / ')} MB`,
      target: 'RSS after all users <= 110% of RSS after half of them',
      judged: last / half,
      met: flat,
    });
  } finally {
    await scope.close();
  }
  return rows;
}
