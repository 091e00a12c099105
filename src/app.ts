/**
 * createApp: the middleware chain, without listening (tests drive it with supertest).
 *
 *   helmet -> request id -> request log -> CORS -> health -> per-IP limit
 *     -> /api/v1: no-store -> JWT auth -> per-user limit -> tenancy -> routers
 *
 * Everything the app needs comes in through `deps`; nothing here reads the environment or
 * touches the filesystem.
 */
import express, { type Express } from 'express';
import type { Store } from 'express-rate-limit';
import helmet from 'helmet';
import type { TokenVerifier } from './auth/token-verifier';
import type { Config } from './config';
import type { Logger } from './logger';
import type { SessionBackend } from './storage/backend';
import { authenticate } from './http/auth';
import { corsPolicy } from './http/cors';
import { notFoundHandler, problemHandler } from './http/errors';
import { jsonBody } from './http/json-body';
import { perIpLimit, perUserLimit } from './http/rate-limit';
import { requestId } from './http/request-id';
import { mountedAt, requestLog } from './http/request-log';
import { tenancy } from './http/tenancy';
import { filesRouter } from './http/routes/files';
import { healthRouter, type Readiness } from './http/routes/health';
import { meRouter } from './http/routes/me';
import { openApiRouter } from './http/routes/openapi';
import { messagesRouter } from './http/routes/messages';
import { sessionsRouter } from './http/routes/sessions';

export interface AppDeps {
  logger: Logger;
  verifier: TokenVerifier;
  backend: SessionBackend;
  readiness: Readiness;
  now?: () => Date;
  /** Rate-limit counters; in memory by default, a shared store when several replicas run. */
  rateLimitStores?: { ip?: Store; user?: Store };
}

export function createApp(config: Config, deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  // ETags on sessions are derived from their version; Express's body hashes would differ.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');

  app.use(
    helmet({
      // A JSON API renders nothing: no source of any kind is allowed, nor framing.
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      // HSTS belongs to the TLS-terminating proxy in front of this service.
      strictTransportSecurity: false,
    }),
  );
  app.use(requestId());
  // Not ready means shutting down once listening: each response then closes its connection,
  // so keep-alive clients reconnect elsewhere instead of holding a draining process open.
  app.use((_req, res, next) => {
    if (!deps.readiness.started()) res.set('Connection', 'close');
    next();
  });
  app.use(requestLog(deps.logger));
  // Before the limits and authentication: a preflight carries no token and must not be counted.
  app.use(corsPolicy(config.corsOrigins));
  app.use(healthRouter(deps.readiness));
  app.use(openApiRouter());
  app.use(
    perIpLimit({ windowMs: config.rateLimit.windowMs, limit: config.rateLimit.perIp, logger: deps.logger, store: deps.rateLimitStores?.ip }),
  );

  const api = express.Router();
  api.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  api.use(authenticate(deps.verifier, deps.logger));
  api.use(
    perUserLimit({ windowMs: config.rateLimit.windowMs, limit: config.rateLimit.perUser, logger: deps.logger, store: deps.rateLimitStores?.user }),
  );
  api.use(
    tenancy({
      backend: deps.backend,
      now: deps.now ?? (() => new Date()),
      limits: {
        stateBytes: config.limits.stateBytes,
        messageBytes: config.limits.messageBytes,
        userQuotaBytes: config.limits.userQuotaBytes,
        sessionsPerUser: config.limits.sessionsPerUser,
        uploadBytes: config.limits.uploadBytes,
        filesPerUpload: config.limits.filesPerUpload,
        uploadTypes: config.uploadAllowedTypes,
      },
    }),
  );
  // Uploads are multipart, not JSON: their router comes before the JSON body parser.
  api.use('/sessions/:sessionId/files', mountedAt('/api/v1/sessions/:sessionId/files'), filesRouter(deps.logger));
  api.use(jsonBody(config.limits.jsonBytes));
  api.use('/me', mountedAt('/api/v1/me'), meRouter());
  api.use('/sessions/:sessionId/messages', mountedAt('/api/v1/sessions/:sessionId/messages'), messagesRouter());
  api.use('/sessions', mountedAt('/api/v1/sessions'), sessionsRouter());

  app.use('/api/v1', api);
  app.use(notFoundHandler());
  app.use(problemHandler(deps.logger));
  return app;
}
