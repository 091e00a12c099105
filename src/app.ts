/**
 * createApp: the middleware chain, without listening (tests drive it with supertest).
 *
 *   [helmet -> request id -> client address -> trace span -> draining check -> request end (log line, metrics) -> CORS]
 *     -> health, /openapi.json, /docs -> per-IP limit
 *     -> /api/v1: no-store -> JWT auth -> per-user limit -> tenancy -> routers
 *
 * Everything the app needs comes in through `deps`; nothing here reads the environment or
 * knows which storage backend is behind the ports.
 */
import express, { type Express, type RequestHandler } from 'express';
import type { Store } from 'express-rate-limit';
import type { TokenVerifier } from './auth/token-verifier';
import type { Config } from './config';
import type { Logger } from './logger';
import type { CursorCodec } from './sessions/listing-cursor';
import type { MetricsRecorder } from './metrics/recorder';
import type { Tracing } from './tracing/tracing';
import type { BlobStore, MetadataBackend } from './sessions/ports';
import { authenticate } from './http/auth';
import { corsPolicy } from './http/cors';
import { notFoundHandler, problemHandler } from './http/errors';
import { jsonBody } from './http/json-body';
import { httpMetrics } from './metrics/http-metrics';
import { perIpLimit, perUserLimit } from './http/rate-limit';
import { requestId } from './http/request-id';
import { clientAddress } from './http/client-address';
import { API_SECURITY_HEADERS, securityHeaders } from './http/security-headers';
import { requestLog } from './http/request-log';
import { requestEnd } from './http/request-end';
import { API_BASE } from './http/api-base';
import { inSeries } from './http/in-series';
import { tenancy } from './http/tenancy';
import { fileRoutes } from './http/routes/files';
import { healthRoutes, type Readiness } from './http/routes/health';
import { meRoutes } from './http/routes/me';
import { openApiRoute } from './http/routes/openapi';
import { apiDocsRoutes } from './http/routes/api-docs';
import { messageRoutes } from './http/routes/messages';
import { sessionRoutes } from './http/routes/sessions';

export interface AppDeps {
  logger: Logger;
  verifier: TokenVerifier;
  backend: MetadataBackend;
  blobs: BlobStore;
  readiness: Readiness;
  /** Signs listing cursors. */
  cursors: CursorCodec;
  now?: () => Date;
  /** Set with OTEL_EXPORTER_OTLP_ENDPOINT: spans for each request, its authentication and its storage calls. */
  tracing?: Tracing;
  /** Set with METRICS=on: what requests, auth, limits and transfers report to. */
  metrics?: MetricsRecorder;
  /** Rate-limit counters; in memory by default, a shared store (RATE_LIMIT_STORE=redis) when several replicas run. */
  rateLimitStores?: { ip?: Store; user?: Store };
}

export function createApp(config: Config, deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  // ETags on sessions are derived from their version; Express's body hashes would differ.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');

  // Not ready means shutting down once listening: each response then closes its connection,
  // so keep-alive clients reconnect elsewhere instead of holding a draining process open.
  const closeWhenDraining: RequestHandler = (_req, res, next) => {
    if (!deps.readiness.started()) res.setHeader('Connection', 'close');
    next();
  };
  // What every request passes first, in one layer: the security headers, its id and address,
  // its trace span, the draining check, what records it when it is over (the request log and
  // the metrics, from one listener), and CORS, before the limits and authentication (a
  // preflight carries no token and must not be counted).
  app.use(
    inSeries(
      securityHeaders(API_SECURITY_HEADERS),
      requestId(),
      clientAddress(),
      deps.tracing?.requestSpan(),
      closeWhenDraining,
      requestEnd([requestLog(deps.logger), deps.metrics && httpMetrics(deps.metrics)]),
      corsPolicy(config.corsOrigins),
    ),
  );
  // Routes straight on the app rather than routers of their own: every API request passes
  // them, and a route is only a pattern test.
  healthRoutes(app, deps.readiness);
  openApiRoute(app);
  if (config.apiDocs) apiDocsRoutes(app);
  app.use(
    perIpLimit({
      windowMs: config.rateLimit.windowMs,
      limit: config.rateLimit.perIp,
      logger: deps.logger,
      metrics: deps.metrics,
      store: deps.rateLimitStores?.ip,
      onStoreError: config.rateLimit.onStoreError,
    }),
  );

  // Every request under /api/v1, whether a route matches or not, passes these first, in one
  // layer: no-store, the token, the per-user limit, and the user's SessionStore.
  const noStore: RequestHandler = (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
  const auth = authenticate(deps.verifier, deps.logger, deps.metrics);
  app.use(
    API_BASE,
    inSeries(
      noStore,
      deps.tracing ? deps.tracing.authSpan(auth) : auth,
      perUserLimit({
        windowMs: config.rateLimit.windowMs,
        limit: config.rateLimit.perUser,
        logger: deps.logger,
        metrics: deps.metrics,
        store: deps.rateLimitStores?.user,
        onStoreError: config.rateLimit.onStoreError,
      }),
      tenancy({
        backend: deps.backend,
        blobs: deps.blobs,
        cursors: deps.cursors,
        now: deps.now ?? (() => new Date()),
        limits: config.limits,
      }),
    ),
  );
  // The routes straight on the app, each with its whole pattern: a request is matched in one
  // pass of one router, and only routes that take a JSON body parse one.
  const json = jsonBody(config.requestLimits.jsonBytes, config.requestLimits.jsonDepth);
  meRoutes(app);
  sessionRoutes(app, json);
  messageRoutes(app, json);
  fileRoutes(app, deps.logger, deps.metrics, {
    concurrentDownloads: config.requestLimits.concurrentDownloads,
    concurrentUploads: config.requestLimits.concurrentUploads,
    downloadIdleTimeoutMs: config.http.downloadIdleTimeoutMs,
    uploadIdleTimeoutMs: config.http.uploadIdleTimeoutMs,
    idleTimeoutMs: config.http.idleTimeoutMs,
  });

  app.use(notFoundHandler());
  app.use(problemHandler(deps.logger));
  return app;
}
