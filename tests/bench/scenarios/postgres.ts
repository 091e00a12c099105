/**
 * The service on STORAGE_BACKEND=postgres with BLOB_STORE=s3, against bare baselines on the
 * same database and the same S3 in the same run: what the minimal correct request on that
 * storage costs, and what the service adds to it.
 *
 * - A fresh database (owner and app roles, tests/helpers/postgres.ts) that the service
 *   migrates; s3rver in a process of its own (baselines/s3rver.ts); the service as a real
 *   process (service.ts) with a pool of POOL_MAX connections as the app role.
 * - baselines/express-pg.ts: Express + pg on the same tables and rows as the same app role
 *   under the same row-level security, one transaction with set_config per request, the same
 *   pool size; nothing else. Its GET also as a plain pool.query with no transaction and no
 *   set_config (as the database's superuser, whom the policy does not filter), a fourth side of
 *   the GET row: what the RLS transaction shape costs. baselines/s3-pipe.ts: a node:http server
 *   piping bytes to and from the same s3rver with lib-storage's Upload and GetObject, also the
 *   baseline of one large streamed upload (200 MB; 20 MB in --quick) whose service RSS growth
 *   is sampled from /proc/<pid>/status every 100 ms.
 *
 * The database is dropped and the s3rver directory removed at the end, also when a scenario
 * fails (or the bench is stopped by a signal: see closeOpenScopes).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { filePart, multipart, streamFilePart } from '../../helpers/multipart';
import { json, measurePair, measureSides, median, type RequestSpec, type Side } from '../load';
import type { BenchOptions } from '../options';
import { payloadChunks, payloadSha256 } from '../payload';
import { allStarted, BUCKET, POOL_MAX, startPostgresStack } from '../postgres-stack';
import { baselineArgs, start, type Running } from '../processes';
import { ratioRow, type Row } from '../report';
import { bearer, scenarioScope, startService } from '../service';
import { STATE_1KB } from '../session-reads';
import { versionedWriters } from '../versioned-writers';

const MESSAGE = { role: 'user', content: 'y'.repeat(200) };
const MiB = 1024 * 1024;
/** The most the service's resident memory may grow during the large upload. */
const LARGE_RSS_LIMIT_MIB = 64;

/** VmRSS of a process, in bytes. */
async function vmRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** PUTs `source` (`bytes` long) as the raw body with http.request; resolves with the status. */
function putStream(url: string, source: Readable, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', headers: { 'Content-Length': String(bytes), 'Content-Type': 'application/octet-stream' } });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    source.on('error', reject);
    source.pipe(req);
  });
}

interface Created {
  id: string;
}

async function sha256Of(url: string, headers: Record<string, string>): Promise<string> {
  const res = await fetch(url, { headers });
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  return createHash('sha256')
    .update(Buffer.from(await res.arrayBuffer()))
    .digest('hex');
}

export async function postgresScenarios(options: BenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const scope = scenarioScope();
  const launch = <T extends Running>(started: Promise<T>) => scope.track(started);

  try {
    const { database, s3, serviceEnv } = await startPostgresStack(scope);

    const [service, barePg, bareS3] = await allStarted([
      launch(startService(await scope.dir('pg-service'), serviceEnv)),
      // The baseline needs the tables, which the service's migrations make as it starts; it
      // touches them only once a request comes.
      launch(
        start({
          args: baselineArgs('express-pg'),
          env: { BENCH_DATABASE_URL: database.databaseUrl, BENCH_PLAIN_DATABASE_URL: database.adminUrl, BENCH_POOL_MAX: String(POOL_MAX) },
        }),
      ),
      launch(start({ args: baselineArgs('s3-pipe'), env: { BENCH_S3_ENDPOINT: s3.url, BENCH_S3_BUCKET: BUCKET } })),
    ] as const);

    // The quick run (a smoke check of one run per side) skips the warm-ups to stay short.
    const measureOptions = (connections: number, seconds = options.seconds) => ({
      ...options,
      runs: options.postgresRuns,
      warmUpSeconds: options.quick ? 0 : options.warmUpSeconds,
      connections,
      seconds,
    });
    // A 1 MiB transfer can take most of a second on a busy machine: file runs last 2 s at least.
    const filePair = (subject: Side, baseline: Side) =>
      measurePair(measureOptions(options.fileConnections, Math.max(2, options.seconds)), subject, baseline);
    const constant = (spec: RequestSpec) => () => spec;
    /** A ratio as a percentage; nothing to say when a run completed no request at all (a smoke run on a busy machine). */
    const percent = (ratio: number) => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : 'n/a');
    /**
     * A row of the service against the minimal baseline, with a third side measured in the same
     * turns: the baseline's routes calling the service's own PgBackend, which splits the gap into
     * what the service's storage costs and what its HTTP layer costs.
     */
    const sqlRow = async (
      scenario: string,
      sides: { service: Side; minimal: Side; backend: Side; plain?: Side },
      baselineName: string,
      minRatio: number,
    ): Promise<Row> => {
      const [service, minimal, backend, plain] = await measureSides(measureOptions(options.connections), [
        sides.service,
        sides.minimal,
        sides.backend,
        ...(sides.plain ? [sides.plain] : []),
      ]);
      const row = ratioRow(scenario, { subject: service!, baseline: minimal! }, baselineName, minRatio, `>= ${percent(minRatio)} of bare Express + pg`);
      const direct = backend!.requestsPerSecond;
      // The fourth side: the same statement as a plain pool.query, no transaction and no set_config.
      const shape = plain
        ? `; bare Express + pg without the transaction and set_config (plain pool.query): ${plain.requestsPerSecond.toFixed(0)} req/s, ` +
          `the minimal (with them) ${percent(minimal!.requestsPerSecond / plain.requestsPerSecond)} of it`
        : '';
      return {
        ...row,
        errors: row.errors! + backend!.errors + (plain?.errors ?? 0),
        extra:
          `bare Express calling the service's PgBackend: ${direct.toFixed(0)} req/s ` +
          `(${percent(direct / minimal!.requestsPerSecond)} of the minimal; the service ${percent(service!.requestsPerSecond / direct)} of it)` +
          shape,
      };
    };
    /** The baseline's path for `user`'s session: minimal SQL, or the service's PgBackend. */
    const barePath = (via: 'minimal' | 'backend' | 'plain', user: string, sessionId: string, rest = '') =>
      `${via === 'minimal' ? '' : `/${via}`}/${user}/sessions/${sessionId}${rest}`;
    const bareSides = (request: (via: 'minimal' | 'backend') => (connection: number) => RequestSpec, prepare?: () => Promise<void>) => ({
      minimal: { target: barePg, request: request('minimal'), ...(prepare ? { prepare } : {}) },
      backend: { target: barePg, request: request('backend'), ...(prepare ? { prepare } : {}) },
    });

    // (a) GET of one session (1 KB state), the same row on every side.
    const reader = await service.call<Created>('pg-reader', 'POST', '/api/v1/sessions', { title: 'read me', state: STATE_1KB });
    for (const via of ['minimal', 'backend', 'plain'] as const) {
      const read = await fetch(`${barePg.url}${barePath(via, 'pg-reader', reader.id)}`);
      if (read.status !== 200 || ((await read.json()) as Created).id !== reader.id) throw new Error(`the bare pg baseline (${via}) did not read the session: ${read.status}`);
    }
    rows.push(
      await sqlRow(
        'postgres: GET /api/v1/sessions/:id (1 KB state)',
        {
          service: { target: service, request: constant(json('GET', `/api/v1/sessions/${reader.id}`, bearer('pg-reader'))) },
          ...bareSides((via) => constant(json('GET', barePath(via, 'pg-reader', reader.id), {}))),
          plain: { target: barePg, request: constant(json('GET', barePath('plain', 'pg-reader', reader.id), {})) },
        },
        'bare Express + pg (SELECT in a set_config transaction)',
        0.6,
      ),
    );

    // (b) PATCH with If-Match: each connection its own user and session, the same rows on every
    // side, each request naming the version the last answer gave.
    const { writer, versioned, reread: rereadVersions } = await versionedWriters(service, 'pg-writer', options.writers);
    rows.push(
      await sqlRow(
        `postgres: PATCH /api/v1/sessions/:id with If-Match (${options.writers} users)`,
        {
          service: {
            target: service,
            prepare: rereadVersions,
            request: (c) => versioned(c, json('PATCH', `/api/v1/sessions/${writer(c).id}`, bearer(writer(c).user), { state: STATE_1KB })),
          },
          ...bareSides(
            (via) => (c) => versioned(c, json('PATCH', barePath(via, writer(c).user, writer(c).id), {}, { state: STATE_1KB })),
            rereadVersions,
          ),
        },
        'bare Express + pg (UPDATE ... WHERE version = $n in a set_config transaction)',
        0.6,
      ),
    );

    // (c) Message append, every connection to the same session (one row's seq counter); every
    // side continues the same dense seq.
    const chat = await service.call<Created>('pg-chatter', 'POST', '/api/v1/sessions', { title: 'chat' });
    let lastSeq = (await service.call<{ seq: number }>('pg-chatter', 'POST', `/api/v1/sessions/${chat.id}/messages`, MESSAGE)).seq;
    for (const via of ['minimal', 'backend'] as const) {
      const appended = await fetch(`${barePg.url}${barePath(via, 'pg-chatter', chat.id, '/messages')}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(MESSAGE),
      });
      const seq = ((await appended.json()) as { seq?: number }).seq;
      if (appended.status !== 201 || seq !== lastSeq + 1) throw new Error(`the bare pg baseline (${via}) appended seq ${seq} after ${lastSeq}`);
      lastSeq = seq;
    }
    rows.push(
      await sqlRow(
        'postgres: POST /api/v1/sessions/:id/messages (one session)',
        {
          service: { target: service, request: constant(json('POST', `/api/v1/sessions/${chat.id}/messages`, bearer('pg-chatter'), MESSAGE)) },
          ...bareSides((via) => constant(json('POST', barePath(via, 'pg-chatter', chat.id, '/messages'), {}, MESSAGE))),
        },
        'bare Express + pg (seq increment + INSERT in a set_config transaction)',
        0.6,
      ),
    );

    // (d) 1 MiB files: each connection its own user and session (a user may run only a few
    // transfers at once). Uploads send the same bytes, as multipart to the service and as the
    // raw body to the bare pipe; downloads read the very objects the service stored.
    const bytes = MiB;
    const payload = await buffer(payloadChunks(bytes));
    const form = multipart([filePart('bench.png', 'image/png', payload)]);
    const filers = await Promise.all(
      Array.from({ length: options.fileConnections }, async (_, i) => {
        const user = `pg-filer-${i}`;
        const session = await service.call<Created>(user, 'POST', '/api/v1/sessions', { title: 'files' });
        return { user, sessionId: session.id, fileId: '' };
      }),
    );
    const filer = (connection: number) => filers[connection % filers.length]!;
    const uploadTo = (connection: number): RequestSpec => ({
      method: 'POST',
      path: `/api/v1/sessions/${filer(connection).sessionId}/files`,
      headers: { ...bearer(filer(connection).user), 'Content-Type': form.contentType },
      body: form.body,
    });
    // One file per user to download, checked end to end on both sides.
    const expected = payloadSha256(bytes);
    await Promise.all(
      filers.map(async (f, i) => {
        const res = await fetch(`${service.url}${uploadTo(i).path}`, { method: 'POST', headers: uploadTo(i).headers, body: form.body });
        const stored = (await res.json()) as { items?: Array<{ id: string; sha256: string }> };
        const file = stored.items?.[0];
        if (res.status !== 201 || file?.sha256 !== expected) throw new Error(`upload to the postgres service: ${res.status}`);
        f.fileId = file.id;
      }),
    );
    const downloadPath = (connection: number) => `/api/v1/sessions/${filer(connection).sessionId}/files/${filer(connection).fileId}`;
    if ((await sha256Of(`${service.url}${downloadPath(0)}`, bearer(filer(0).user))) !== expected) throw new Error('the service sent other bytes');
    if ((await sha256Of(`${bareS3.url}/objects/files/${filer(0).fileId}`, {})) !== expected) throw new Error('the bare pipe sent other bytes');

    const uploads = await filePair(
      { target: service, request: uploadTo },
      { target: bareS3, request: constant({ method: 'PUT', path: '/objects', body: payload }) },
    );
    rows.push(
      ratioRow(
        `postgres: upload one 1 MiB file (S3, ${options.fileConnections} users at once)`,
        uploads,
        'bare node:http piping to s3rver (lib-storage Upload)',
        0.5,
        '>= 50% of the bare pipe',
      ),
    );
    const downloads = await filePair(
      { target: service, request: (c) => ({ method: 'GET', path: downloadPath(c), headers: bearer(filer(c).user) }) },
      { target: bareS3, request: (c) => ({ method: 'GET', path: `/objects/files/${filer(c).fileId}` }) },
    );
    rows.push(
      ratioRow(
        `postgres: download one 1 MiB file (S3, ${options.fileConnections} users at once)`,
        downloads,
        'bare node:http piping GetObject',
        0.6,
        '>= 60% of the bare pipe',
      ),
    );

    // (e) One large upload, streamed from a generator on both sides (never a file in memory):
    // the service against the bare pipe's lib-storage Upload to the same s3rver, one at a time,
    // with the service's RSS sampled every 100 ms while it runs.
    const largeMiB = options.quick ? 20 : 200;
    const large = largeMiB * MiB;
    const largeSha = payloadSha256(large);
    const largeUser = filers[0]!;
    const serviceSeconds: number[] = [];
    const bareSeconds: number[] = [];
    const growths: number[] = [];
    for (let run = 0; run < (options.quick ? 1 : 3); run++) {
      const before = await vmRss(service.pid);
      let peak = before;
      const sampler = setInterval(() => {
        vmRss(service.pid).then(
          (rss) => (peak = Math.max(peak, rss)),
          () => undefined,
        );
      }, 100);
      let answer: { status: number; body: string };
      const started = performance.now();
      try {
        answer = await streamFilePart(
          `${service.url}/api/v1/sessions/${largeUser.sessionId}/files`,
          bearer(largeUser.user),
          { filename: 'large.png', contentType: 'image/png' },
          payloadChunks(large),
          large,
        );
      } finally {
        clearInterval(sampler);
      }
      serviceSeconds.push((performance.now() - started) / 1000);
      peak = Math.max(peak, await vmRss(service.pid));
      growths.push(Math.max(0, peak - before) / MiB);
      const stored = answer.status === 201 ? (JSON.parse(answer.body) as { items: Array<{ id: string; sha256: string }> }).items[0] : undefined;
      if (stored?.sha256 !== largeSha) throw new Error(`large upload to the postgres service: ${answer.status} ${answer.body.slice(0, 200)}`);
      await service.call(largeUser.user, 'DELETE', `/api/v1/sessions/${largeUser.sessionId}/files/${stored.id}`);
      const bareStarted = performance.now();
      const bare = await putStream(`${bareS3.url}/objects`, payloadChunks(large), large);
      if (bare !== 201) throw new Error(`large upload to the bare pipe: ${bare}`);
      bareSeconds.push((performance.now() - bareStarted) / 1000);
    }
    const serviceRate = largeMiB / median(serviceSeconds);
    const bareRate = largeMiB / median(bareSeconds);
    const growth = Math.max(...growths);
    rows.push({
      scenario: `postgres: upload one ${largeMiB} MB file (S3, streamed${options.quick ? '; 20 MB in --quick, 200 MB in the full run' : ''})`,
      unit: 'MB/s',
      value: serviceRate,
      baseline: { name: 'bare node:http piping to s3rver (lib-storage Upload), same bytes', value: bareRate },
      ratio: serviceRate / bareRate,
      extra: `service RSS growth ${growth.toFixed(1)} MB (VmRSS sampled every 100 ms, peak minus before; worst of ${growths.length})`,
      target: `>= 60% of the bare pipe; RSS growth <= ${LARGE_RSS_LIMIT_MIB} MB`,
      met: serviceRate / bareRate >= 0.6 && growth <= LARGE_RSS_LIMIT_MIB,
    });
  } finally {
    await scope.close();
  }
  return rows;
}
