/**
 * The process entry point: validate configuration, await startup (legacy cleanup included),
 * and only then listen. SIGTERM/SIGINT drain in-flight requests; a second signal exits now.
 */
import { createServer, type Server } from 'node:http';
import { createApp } from './app';
import { loadConfig } from './config';
import { createLogger } from './logger';
import { prepareService } from './startup';

function fail(lines: string[]): never {
  for (const line of lines) process.stderr.write(`session-vault: ${line}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const loaded = loadConfig(process.env);
  if (!loaded.ok) fail(loaded.errors);
  const { config } = loaded;
  const logger = createLogger(config.log);

  const prepared = await prepareService(config, logger);
  if (!prepared.ok) fail(prepared.errors);
  const { service } = prepared;

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
    const stop = (code: number) => {
      Promise.all([service.storage.close().then(() => logger.info('storage closed')), service.rateLimit.close()]).then(
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
