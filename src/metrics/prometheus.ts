/**
 * The MetricsRecorder on prom-client, in a registry of its own (never prom-client's global
 * one, so two services in one test process do not mix). Loaded only with METRICS=on.
 *
 * Process metrics (CPU, memory, heap, handles) and the event-loop lag come from prom-client's
 * default collectors, all but the GC histogram (process-metrics.ts); everything else is named
 * `session_vault_*`. The two histograms observed on every request (its duration, and each
 * storage call's) are SeriesHistograms (series-histogram.ts), registered in the same registry.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from './process-metrics';
import { SeriesHistogram } from './series-histogram';
import type { MetricsRecorder } from './recorder';

/** Request durations: a cached read takes under a millisecond, an upload may take seconds. */
const REQUEST_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Storage calls and fsyncs: from a cache hit (microseconds) to a slow disk. */
const STORAGE_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];
const BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export interface PrometheusMetrics {
  recorder: MetricsRecorder;
  registry: Registry;
}

export function createPrometheusMetrics(): PrometheusMetrics {
  const registry = new Registry();
  collectProcessMetrics(registry);
  const registers = [registry];

  const requestSeconds = new SeriesHistogram(
    {
      name: 'session_vault_http_request_duration_seconds',
      help: 'Time from the request reaching the app to the response finishing (or the client leaving), by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: REQUEST_SECONDS,
    },
    registry,
  );
  // The request count is the histogram's own count, copied at each scrape: a request is
  // counted once, not twice.
  const countName = 'session_vault_http_request_duration_seconds_count';
  new Counter({
    name: 'session_vault_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
    async collect() {
      const counts = (await requestSeconds.get()).values.filter((value) => value.metricName === countName);
      // Reset and filled in one synchronous step, so two scrapes at once never add up twice.
      this.reset();
      for (const { labels, value } of counts) this.inc(labels, value);
    },
  });
  const authFailures = new Counter({
    name: 'session_vault_auth_failures_total',
    help: 'Requests refused with 401, by reason class.',
    labelNames: ['reason'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'session_vault_rate_limited_total',
    help: 'Requests refused with 429, by limiter (ip before authentication, user after it).',
    labelNames: ['limiter'] as const,
    registers,
  });
  const transferBytes = new Counter({
    name: 'session_vault_transfer_bytes_total',
    help: 'File bytes stored by uploads (direction="upload") and sent by completed downloads (direction="download").',
    labelNames: ['direction'] as const,
    registers,
  });
  const storageSeconds = new SeriesHistogram(
    {
      name: 'session_vault_storage_operation_duration_seconds',
      help: 'Time of one storage port call, by operation (port.method) and outcome.',
      labelNames: ['operation', 'outcome'],
      buckets: STORAGE_SECONDS,
    },
    registry,
  );
  const durableWriteSeconds = new Histogram({
    name: 'session_vault_fs_durable_write_duration_seconds',
    help: 'Filesystem backend: writing and fsyncing a file (an atomic replace includes its rename and directory fsync).',
    buckets: STORAGE_SECONDS,
    registers,
  });
  const appendFsyncSeconds = new Histogram({
    name: 'session_vault_fs_append_fsync_duration_seconds',
    help: 'Filesystem backend: the fsync of an append to a message log or file journal.',
    buckets: STORAGE_SECONDS,
    registers,
  });
  const batchSize = new Histogram({
    name: 'session_vault_fs_group_commit_batch_size',
    help: 'Filesystem backend: writes taken to disk together by one group commit, by queue.',
    labelNames: ['queue'] as const,
    buckets: BATCH_SIZES,
    registers,
  });
  const cleanupCount = new Gauge({
    name: 'session_vault_legacy_cleanup_sessions',
    help: 'Legacy sessions the startup cleanup found (removed, unless LEGACY_CLEANUP=dry-run).',
    registers,
  });
  const cleanupSeconds = new Gauge({
    name: 'session_vault_legacy_cleanup_duration_seconds',
    help: 'How long the startup legacy cleanup took.',
    registers,
  });

  const recorder: MetricsRecorder = {
    request: (method, route, status, seconds) => requestSeconds.series(method, route, status).observe(seconds),
    authFailure: (reason) => authFailures.inc({ reason }),
    rateLimited: (limiter) => rateLimited.inc({ limiter }),
    transferred: (direction, bytes) => transferBytes.inc({ direction }, bytes),
    storageOperation: (operation, outcome, seconds) => storageSeconds.series(operation, outcome).observe(seconds),
    durableWrite: (seconds) => durableWriteSeconds.observe(seconds),
    appendFsync: (seconds) => appendFsyncSeconds.observe(seconds),
    groupCommitBatch: (queue, size) => batchSize.observe({ queue }, size),
    legacyCleanup(count, seconds) {
      cleanupCount.set(count);
      cleanupSeconds.set(seconds);
    },
  };
  return { recorder, registry };
}
