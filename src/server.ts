/**
 * The process entry point: read `.env` if there is one, validate configuration, await startup
 * (legacy cleanup included), start the metrics server (METRICS=on), and only then listen.
 * SIGTERM/SIGINT drain in-flight requests; a second signal exits now.
 */
import { createServer, type Server } from 'node:http';
import { createApp } from './app';
import { loadConfig } from './config';
import { loadEnvFile } from './env-file';
import { createLogger } from './logger';
import { startMetricsServer, stopMetricsServer } from './metrics/metrics-server';
import type { PrometheusMetrics } from './metrics/prometheus';
import type { Tracing } from './tracing/tracing';
import { prepareService } from './startup';

function fail(lines: string[]): never {
  for (const line of lines) process.stderr.write(`session-vault: ${line}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const envFile = loadEnvFile();
  if ('error' in envFile) fail([envFile.error]);
  const loaded = loadConfig(process.env);
  if (!loaded.ok) fail(loaded.errors);
  const { config } = loaded;
  // Loaded only when on: with OTEL_EXPORTER_OTLP_ENDPOINT unset, no OpenTelemetry module is required.
  let tracing: Tracing | undefined;
  if (config.tracing) {
    const { createTracing } = await import('./tracing/open-telemetry.js');
    tracing = createTracing({ serviceName: config.tracing.serviceName });
  }
  const logger = createLogger(config.log, undefined, tracing ? () => tracing.logFields() : undefined);
  if (envFile.loaded) logger.info('read .env', { file: envFile.file, detail: 'variables already set in the environment were kept' });

  // Loaded only when on: with METRICS off, prom-client is never required.
  let metrics: PrometheusMetrics | undefined;
  if (config.metrics) {
    const { createPrometheusMetrics } = await import('./metrics/prometheus.js');
    metrics = createPrometheusMetrics();
  }

  if (tracing) logger.info('tracing', { serviceName: config.tracing?.serviceName, exporter: 'otlp/http' });
  const prepared = await prepareService(config, logger, { metrics: metrics?.recorder, tracing });
  if (!prepared.ok) fail(prepared.errors);
  const { service } = prepared;

  let metricsServer: Server | undefined;
  if (config.metrics && metrics) {
    const { host, port } = config.metrics;
    metricsServer = await startMetricsServer(metrics.registry, host, port, logger).catch(async (error: unknown) => {
      await service.release();
      return fail([`METRICS_PORT: cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
    });
  }

  const app = createApp(config, service.deps);
  const server: Server = createServer(
    {
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      keepAliveTimeout: config.http.keepAliveTimeoutMs,
      // How often Node looks for requests past those timeouts: often enough that a short
      // timeout is honoured near its value, never more than once a second.
      connectionsCheckingInterval: Math.max(1000, Math.min(30_000, Math.floor(config.http.headersTimeoutMs / 4))),
    },
    app,
  );
  // A connection that moves no byte either way for this long is closed: an idle client that
  // never sends a request, or one that stopped mid-way, holds no socket for ever.
  server.setTimeout(config.http.idleTimeoutMs);
  server.listen(config.port, config.host);
  server.on('error', (error: NodeJS.ErrnoException) => {
    logger.error('cannot listen', { code: error.code, host: config.host, port: config.port });
    process.exit(1);
  });
  server.on('listening', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    logger.info('listening', { host: config.host, port, env: config.env, storage: config.storage.backend, ...service.storage.location });
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.warn('second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    service.setStarted(false);
    logger.info('shutting down', { signal, timeoutMs: config.shutdownTimeoutMs });
    // The backend (and the rate-limit store's connection) is closed only once no request can
    // use it any more: after the drain, or after the connections still open at the timeout are cut.
    // The metrics server stays up through the drain, so a scrape can still see it.
    const stop = (code: number) => {
      Promise.all([
        service.release().then(() => logger.info('storage closed')),
        metricsServer ? stopMetricsServer(metricsServer) : undefined,
        // Spans still buffered are sent, for at most 2 s: an unreachable collector must not
        // hold the exit past the orchestrator's grace period.
        tracing ? Promise.race([tracing.shutdown().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000).unref())]) : undefined,
      ]).then(
        () => {
          process.exit(code);
        },
        (error: unknown) => {
          logger.error('closing storage failed', { error: error instanceof Error ? error.message : String(error) });
          process.exit(1);
        },
      );
    };
    const timer = setTimeout(() => {
      logger.warn('shutdown timeout, closing remaining connections');
      server.closeAllConnections();
      stop(0);
    }, config.shutdownTimeoutMs);
    timer.unref();
    server.close(() => {
      logger.info('stopped');
      stop(0);
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`session-vault: startup failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
