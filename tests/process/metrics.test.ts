/**
 * GET /metrics from the running process, parsed with parse-prometheus-text-format (the
 * Prometheus text-format parser the JavaScript ecosystem uses): after a known set of
 * requests, the series an operator would graph and alert on hold the right counts, no label
 * carries a user or session id, the API port does not serve the metrics, and without
 * METRICS=on there is no metrics server at all.
 */
import { connect } from 'node:net';
import { rm } from 'node:fs/promises';
import jwt from 'jsonwebtoken';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { TEST_SECRET, makeTempDir } from '../helpers/test-app';
import { logLines, startServer, type ServerProcess } from '../helpers/server-process';

type MetricFamily = parsePrometheusTextFormat.MetricFamily;

const tokenFor = (userId: string) => jwt.sign({ sub: userId }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 });
const USER = 'metrics-user-7f3a';
const LIMITED_USER = 'metrics-limited-user-91c2';
const PER_USER_LIMIT = 15;

let dataDir: string;
let server: ServerProcess;
let metricsUrl: string;

beforeAll(async () => {
  dataDir = await makeTempDir();
  server = await startServer({
    DATA_DIR: dataDir,
    JWT_SECRET: TEST_SECRET,
    METRICS: 'on',
    METRICS_PORT: '0',
    RATE_LIMIT_MAX: String(PER_USER_LIMIT),
  });
  const line = logLines(server.stdout()).find((l) => l.message === 'metrics listening');
  expect(line).toMatchObject({ host: '127.0.0.1', path: '/metrics' });
  metricsUrl = `http://127.0.0.1:${String(line!.port)}/metrics`;
});
afterAll(async () => {
  await server?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/**
 * The whole scrape parsed (the parser throws on a line that is not the text format), plus
 * each histogram's `_count` series parsed on their own: parse-prometheus-text-format 1.1
 * merges a labelled histogram's series into one and drops their labels (its open issue #13),
 * while it reads the same `_count` lines correctly as a family without a TYPE line.
 */
async function scrape(): Promise<MetricFamily[]> {
  const response = await fetch(metricsUrl);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  const families = parsePrometheusTextFormat(text);
  const counts = families
    .filter((f) => f.type === 'HISTOGRAM')
    .map((f) => text.split('\n').filter((line) => line.startsWith(`${f.name}_count`)).join('\n'));
  return [...families, ...parsePrometheusTextFormat(`${counts.join('\n')}\n`)];
}

function family(families: MetricFamily[], name: string): MetricFamily {
  const found = families.find((f) => f.name === name);
  if (!found) throw new Error(`no ${name} in the scrape`);
  return found;
}

/** The sum of the samples whose labels include `labels` (for a histogram, use its `_count`). */
function sampleValue(families: MetricFamily[], name: string, labels: Record<string, string> = {}): number {
  const matching = family(families, name).metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return matching.reduce((sum, m) => sum + Number(m.value), 0);
}

it('counts requests by route pattern and status, auth failures by reason, refusals by limiter, bytes, and storage calls', async () => {
  const auth = { Authorization: `Bearer ${tokenFor(USER)}` };
  const api = `${server.url}/api/v1`;
  const sessionIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const created = await fetch(`${api}/sessions`, { method: 'POST', headers: auth });
    expect(created.status).toBe(201);
    sessionIds.push(((await created.json()) as { id: string }).id);
  }
  for (let i = 0; i < 5; i++) expect((await fetch(`${api}/sessions/${sessionIds[i % 3]!}`, { headers: auth })).status).toBe(200);
  const message = await fetch(`${api}/sessions/${sessionIds[0]!}/messages`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ role: 'user', content: 'hello' }),
  });
  expect(message.status).toBe(201);
  const form = new FormData();
  const body = 'city,days\nLisbon,4\n';
  form.append('file', new Blob([body], { type: 'text/csv' }), 'plan.csv');
  const uploaded = await fetch(`${api}/sessions/${sessionIds[1]!}/files`, { method: 'POST', headers: auth, body: form });
  expect(uploaded.status).toBe(201);
  const [file] = ((await uploaded.json()) as { items: Array<{ id: string }> }).items;
  const downloaded = await fetch(`${api}/sessions/${sessionIds[1]!}/files/${file!.id}`, { headers: auth });
  expect(await downloaded.text()).toBe(body);

  expect((await fetch(`${api}/me`)).status).toBe(401);
  expect((await fetch(`${api}/me`)).status).toBe(401);
  const forged = jwt.sign({ sub: USER }, `${TEST_SECRET}-not-the-key`, { algorithm: 'HS256', expiresIn: 600 });
  expect((await fetch(`${api}/me`, { headers: { Authorization: `Bearer ${forged}` } })).status).toBe(401);
  const limited = { Authorization: `Bearer ${tokenFor(LIMITED_USER)}` };
  const statuses: number[] = [];
  for (let i = 0; i <= PER_USER_LIMIT; i++) statuses.push((await fetch(`${api}/me`, { headers: limited })).status);
  expect(statuses.filter((s) => s === 429)).toHaveLength(1);

  const families = await scrape();
  const requests = 'session_vault_http_requests_total';
  expect(sampleValue(families, requests, { method: 'POST', route: '/api/v1/sessions', status: '201' })).toBe(3);
  expect(sampleValue(families, requests, { method: 'GET', route: '/api/v1/sessions/:sessionId', status: '200' })).toBe(5);
  expect(sampleValue(families, requests, { method: 'GET', route: '/api/v1/me', status: '200' })).toBe(PER_USER_LIMIT);
  expect(sampleValue(families, requests, { route: '/api/v1/sessions/:sessionId/files/:fileId', status: '200' })).toBe(1);
  // The count is copied from the duration histogram at each scrape: every scrape gives it
  // once, never added to what an earlier scrape copied.
  for (const again of await Promise.all([scrape(), scrape(), scrape()])) {
    expect(sampleValue(again, requests, { method: 'GET', route: '/api/v1/sessions/:sessionId', status: '200' })).toBe(5);
  }
  const durations = 'session_vault_http_request_duration_seconds';
  expect(family(families, durations).type).toBe('HISTOGRAM');
  expect(sampleValue(families, `${durations}_count`, { method: 'GET', route: '/api/v1/sessions/:sessionId', status: '200' })).toBe(5);

  expect(sampleValue(families, 'session_vault_auth_failures_total', { reason: 'missing_token' })).toBe(2);
  expect(sampleValue(families, 'session_vault_auth_failures_total', { reason: 'bad_signature' })).toBe(1);
  expect(sampleValue(families, 'session_vault_rate_limited_total', { limiter: 'user' })).toBe(1);
  expect(sampleValue(families, 'session_vault_transfer_bytes_total', { direction: 'upload' })).toBe(Buffer.byteLength(body));
  expect(sampleValue(families, 'session_vault_transfer_bytes_total', { direction: 'download' })).toBe(Buffer.byteLength(body));

  const storage = 'session_vault_storage_operation_duration_seconds_count';
  expect(sampleValue(families, storage, { operation: 'metadata.createSession', outcome: 'ok' })).toBe(3);
  expect(sampleValue(families, storage, { operation: 'metadata.appendMessage', outcome: 'ok' })).toBe(1);
  expect(sampleValue(families, storage, { operation: 'blobs.put', outcome: 'ok' })).toBe(1);
  expect(sampleValue(families, 'session_vault_fs_durable_write_duration_seconds_count')).toBeGreaterThanOrEqual(3);
  expect(sampleValue(families, 'session_vault_fs_append_fsync_duration_seconds_count')).toBeGreaterThanOrEqual(1);
  expect(sampleValue(families, 'session_vault_fs_group_commit_batch_size_count', { queue: 'messages' })).toBe(1);
  expect(family(families, 'session_vault_legacy_cleanup_sessions').metrics[0]!.value).toBe('0');
  expect(family(families, 'session_vault_legacy_cleanup_duration_seconds').metrics).toHaveLength(1);
  // prom-client's default metrics: the event loop's lag and the process's own.
  for (const name of ['nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
    expect(family(families, name).metrics.length).toBeGreaterThan(0);
  }
  // All but the GC histogram, whose observer taxes every garbage collection (process-metrics.ts).
  expect(families.some((f) => f.name === 'nodejs_gc_duration_seconds')).toBe(false);

  // No label value anywhere names a user, a session or a file.
  const ids = [USER, LIMITED_USER, ...sessionIds, file!.id];
  const labelValues = families.flatMap((f) => f.metrics.flatMap((m) => Object.values(m.labels ?? {})));
  expect(labelValues.length).toBeGreaterThan(0);
  for (const value of labelValues) for (const id of ids) expect(value).not.toContain(id);
});

it('is not served on the API port', async () => {
  const response = await fetch(`${server.url}/metrics`);
  expect(response.status).toBe(404);
  expect(await response.text()).not.toContain('session_vault_');
});

it('answers nothing but GET /metrics on the metrics port', async () => {
  expect((await fetch(metricsUrl.replace('/metrics', '/api/v1/me'))).status).toBe(404);
});

describe('with METRICS unset', () => {
  let plain: ServerProcess;
  let plainDir: string;
  beforeAll(async () => {
    plainDir = await makeTempDir();
    plain = await startServer({ DATA_DIR: plainDir, JWT_SECRET: TEST_SECRET });
  });
  afterAll(async () => {
    await plain?.stop();
    await rm(plainDir, { recursive: true, force: true });
  });

  it('starts no metrics server: no log line, nothing on the default port, 404 on the API port', async () => {
    expect(logLines(plain.stdout()).some((l) => l.message === 'metrics listening')).toBe(false);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(9464, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    expect((await fetch(`${plain.url}/metrics`)).status).toBe(404);
  });
});
