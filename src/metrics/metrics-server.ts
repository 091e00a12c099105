/**
 * The metrics endpoint: its own small HTTP server on METRICS_HOST:METRICS_PORT, never a route
 * of the API app, so publishing the API (a proxy, a port mapping) never publishes the
 * metrics with it. It answers `GET /metrics` and nothing else.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../logger';
import type { Registry } from 'prom-client';

export function startMetricsServer(registry: Registry, host: string, port: number, logger: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        logger.error('metrics collection failed', { error: error instanceof Error ? error.message : String(error) });
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n');
      },
    );
  });
  // A scraper keeps its connection open between scrapes; shutdown must not wait for it.
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      logger.info('metrics listening', { host, port: typeof address === 'object' && address ? address.port : port, path: '/metrics' });
      resolve(server);
    });
  });
}

export function stopMetricsServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
