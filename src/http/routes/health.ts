/** Liveness and readiness, unauthenticated and outside the rate limits (probes poll them). */
import type { IRouter } from 'express';

export interface Readiness {
  /** Startup (legacy cleanup) finished and the service is not shutting down. */
  started(): boolean;
  /** The storage backend can take writes now. */
  storageReady(): Promise<boolean>;
}

export function healthRoutes(router: IRouter, readiness: Readiness): void {
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const ready = readiness.started() && (await readiness.storageReady());
    res.set('Cache-Control', 'no-store').status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready' });
  });
}
