/**
 * Two limits: per client IP before authentication (a flood of bad tokens is throttled
 * before any verification work), and per user after it (one user cannot starve the others,
 * and users behind one office address do not share a budget). 429s are problem+json.
 *
 * A store that cannot answer (Redis down or slow: see rate-limit-store.ts) throws a
 * ServiceUnavailable. `onStoreError` decides: `allow` lets the request pass unlimited,
 * `deny` hands the error to the error middleware, which answers 503 with Retry-After.
 */
import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type Store } from 'express-rate-limit';
import { ServiceUnavailable, TooManyRequests } from '../errors';
import { securityEvent, type Logger } from '../logger';
import type { MetricsRecorder } from '../metrics/recorder';

export interface RateLimitOptions {
  windowMs: number;
  limit: number;
  logger: Logger;
  metrics?: MetricsRecorder | undefined;
  store?: Store | undefined;
  /** When the store fails: pass the request (the default) or refuse it with 503. */
  onStoreError?: 'allow' | 'deny';
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function limiter(kind: 'ip' | 'user', options: RateLimitOptions, key: (req: Parameters<RequestHandler>[0]) => string): RequestHandler {
  return rateLimit({
    windowMs: options.windowMs,
    limit: options.limit,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    identifier: kind,
    keyGenerator: (req) => key(req),
    ...(options.store ? { store: options.store } : {}),
    passOnStoreError: options.onStoreError !== 'deny',
    // The library's own messages go to the service's log. A store that cannot be reached
    // is logged once per outage by the store itself, not once per request here.
    logger: {
      warn: (error, message) => options.logger.warn(message ?? 'express-rate-limit', { error: describe(error) }),
      error: (error, message) => {
        if (!(error instanceof ServiceUnavailable)) options.logger.error(message ?? 'express-rate-limit', { error: describe(error) });
      },
    },
    handler: (req, _res, next, used) => {
      const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retryAfter = Math.max(1, Math.ceil(((resetTime?.getTime() ?? Date.now() + used.windowMs) - Date.now()) / 1000));
      options.metrics?.rateLimited(kind);
      securityEvent(options.logger, 'rate limited', { requestId: req.requestId, limit: kind, userId: req.userId, ip: req.ip });
      next(new TooManyRequests(`Too many requests; try again in ${retryAfter} s.`, retryAfter));
    },
  });
}

export function perIpLimit(options: RateLimitOptions): RequestHandler {
  return limiter('ip', options, (req) => ipKeyGenerator(req.ip ?? 'unknown'));
}

export function perUserLimit(options: RateLimitOptions): RequestHandler {
  return limiter('user', options, (req) => `user:${req.userId ?? ''}`);
}
