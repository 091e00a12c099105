/**
 * Two limits: per client IP before authentication (a flood of bad tokens is throttled
 * before any verification work), and per user after it (one user cannot starve the others,
 * and users behind one office address do not share a budget). 429s are problem+json.
 */
import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type Store } from 'express-rate-limit';
import { TooManyRequests } from '../errors';
import { securityEvent, type Logger } from '../logger';

export interface RateLimitOptions {
  windowMs: number;
  limit: number;
  logger: Logger;
  store?: Store | undefined;
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
    handler: (req, _res, next, used) => {
      const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const retryAfter = Math.max(1, Math.ceil(((resetTime?.getTime() ?? Date.now() + used.windowMs) - Date.now()) / 1000));
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
