/**
 * The process entry point: validate configuration, await startup (legacy cleanup included),
 * and only then listen. SIGTERM/SIGINT drain in-flight requests; a second signal exits now.
 */
import type { Server } from 'node:http';
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
  const server: Server = app.listen(config.port, config.host);
  server.on('error', (error: NodeJS.ErrnoException) => {
    logger.error('cannot listen', { code: error.code, host: config.host, port: config.port });
    process.exit(1);
  });
  server.on('listening', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    logger.info('listening', { host: config.host, port, env: config.env, dataDir: service.paths.root });
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
    const timer = setTimeout(() => {
      logger.warn('shutdown timeout, closing remaining connections');
      server.closeAllConnections();
      process.exit(0);
    }, config.shutdownTimeoutMs);
    timer.unref();
    server.close(() => {
      logger.info('stopped');
      process.exit(0);
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
