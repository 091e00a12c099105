/**
 * Zero cost when off: with METRICS unset and OTEL_EXPORTER_OTLP_ENDPOINT unset, the process
 * never loads prom-client or any OpenTelemetry package; with them set, it does (so the probe
 * can see them), and an unreachable collector does not stop it from serving or exiting.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { TEST_SECRET, makeTempDir } from '../helpers/test-app';
import { startServer } from '../helpers/server-process';

const PROBE = path.join(__dirname, '..', 'helpers', 'report-loaded-modules.cjs');

/** Starts the service with the probe, serves one request, stops it with SIGTERM; the packages it had loaded. */
async function loadedPackages(env: Record<string, string>): Promise<string[]> {
  const dataDir = await makeTempDir();
  try {
    const server = await startServer({ DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET, NODE_OPTIONS: `--require ${PROBE}`, ...env });
    expect((await fetch(`${server.url}/api/v1/me`)).status).toBe(401);
    server.proc.kill('SIGTERM');
    const { code } = await server.exited;
    expect(code).toBe(0);
    const line = server.stderr().split('\n').find((l) => l.startsWith('loaded-packages: '));
    if (!line) throw new Error(`no report from the probe:\n${server.stderr()}`);
    return JSON.parse(line.slice('loaded-packages: '.length)) as string[];
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

it('loads neither prom-client nor OpenTelemetry when both are off', async () => {
  expect(await loadedPackages({})).toEqual([]);
});

it('loads them when METRICS=on and OTEL_EXPORTER_OTLP_ENDPOINT are set', async () => {
  // Port 9 (discard) on loopback: nothing answers, the spans are dropped at the exporter's timeout.
  const loaded = await loadedPackages({ METRICS: 'on', METRICS_PORT: '0', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_SERVICE_NAME: 'probe' });
  expect(loaded).toEqual(expect.arrayContaining(['prom-client', '@opentelemetry/api', '@opentelemetry/sdk-trace-node', '@opentelemetry/exporter-trace-otlp-http']));
});
