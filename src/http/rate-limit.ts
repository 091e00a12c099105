/**
 * Two limits: per client IP before authentication (a flood of bad tokens is throttled
 * before any verification work), and per user after it (one user cannot starve the others,
 * and users behind one office address do not share a budget). 429s are problem+json.
 *
 * The counting is express-rate-limit's: its `Store` interface, its MemoryStore by default and
 * rate-limit-redis with RATE_LIMIT_STORE=redis, its IPv6 subnet key, and the IETF draft-8
 * `RateLimit` / `RateLimit-Policy` headers it sends. Its middleware is not used: for every
 * request it awaits five times, hashes the key for the policy header and defines properties
 * for options this service never sets, which made the two limiters a fifth of a GET's CPU
 * (see the README's Performance section). Here one increment is one store call, and each
 * key's partition hash is computed once.
 *
 * A store that cannot answer (Redis down or slow: see rate-limit-store.ts) throws a
 * ServiceUnavailable. `onStoreError` decides: `allow` lets the request pass unlimited,
 * `deny` hands the error to the error middleware, which answers 503 with Retry-After.
 */
import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, MemoryStore, type ClientRateLimitInfo, type Options, type Store } from 'express-rate-limit';
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

type Kind = 'ip' | 'user';

/** Partition keys remembered per limiter; beyond it the oldest is recomputed when next seen. */
const REMEMBERED_PARTITION_KEYS = 10_000;

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * The draft-8 `pk` parameter: the key hashed so the header names the client's partition
 * without revealing it, the same value express-rate-limit sends (base64 of the first 12 hex
 * digits of its SHA-256).
 */
function partitionKeys(): (key: string) => string {
  const known = new Map<string, string>();
  return (key) => {
    let pk = known.get(key);
    if (pk === undefined) {
      pk = Buffer.from(createHash('sha256').update(key).digest('hex').slice(0, 12)).toString('base64');
      if (known.size >= REMEMBERED_PARTITION_KEYS) known.delete(known.keys().next().value!);
      known.set(key, pk);
    }
    return pk;
  };
}

function limiter(kind: Kind, options: RateLimitOptions, keyOf: (req: Request) => string): RequestHandler {
  const store = options.store ?? new MemoryStore();
  // Stores read the window (and their prefix) from the options they are given at init.
  void Promise.resolve(store.init?.({ windowMs: options.windowMs } as Options)).catch((error: unknown) =>
    options.logger.error('rate-limit store initialization failed', { limit: kind, error: describe(error) }),
  );
  const windowSeconds = Math.ceil(options.windowMs / 1000);
  const policyPrefix = `"${kind}"; q=${options.limit}; w=${windowSeconds}; pk=:`;
  const partitionKey = partitionKeys();
  const passOnStoreError = options.onStoreError !== 'deny';

  const counted = (req: Request, res: Parameters<RequestHandler>[1], next: Parameters<RequestHandler>[2], key: string, info: ClientRateLimitInfo) => {
    const resetSeconds = info.resetTime ? Math.max(0, Math.ceil((info.resetTime.getTime() - Date.now()) / 1000)) : windowSeconds;
    if (!res.headersSent) {
      res.append('RateLimit', `"${kind}"; r=${Math.max(options.limit - info.totalHits, 0)}; t=${resetSeconds}`);
      res.append('RateLimit-Policy', `${policyPrefix}${partitionKey(key)}:`);
    }
    if (info.totalHits <= options.limit) {
      next();
      return;
    }
    const retryAfter = Math.max(1, resetSeconds);
    options.metrics?.rateLimited(kind);
    securityEvent(options.logger, 'rate limited', { requestId: req.requestId, limit: kind, userId: req.userId, ip: req.clientAddress });
    next(new TooManyRequests(`Too many requests; try again in ${retryAfter} s.`, retryAfter));
  };

  const failed = (next: Parameters<RequestHandler>[2], error: unknown) => {
    // An outage is logged by the store itself, once; anything else is a fault worth a line.
    if (!(error instanceof ServiceUnavailable)) options.logger.error('rate-limit store failed', { limit: kind, error: describe(error) });
    if (passOnStoreError) next();
    else next(error);
  };

  return (req, res, next) => {
    const key = keyOf(req);
    let result: ReturnType<Store['increment']>;
    try {
      result = store.increment(key);
    } catch (error) {
      failed(next, error);
      return;
    }
    if (result instanceof Promise) {
      result
        .then(
          (info) => counted(req, res, next, key, info),
          (error: unknown) => failed(next, error),
        )
        // What throws after next() has been called (a logger, a metric) must not end the
        // process as an unhandled rejection; next() is not called a second time.
        .catch((error: unknown) => options.logger.error('rate limit failed after counting', { limit: kind, error: describe(error) }));
    } else {
      counted(req, res, next, key, result);
    }
  };
}

export function perIpLimit(options: RateLimitOptions): RequestHandler {
  // An IPv4 address is its own key; only an IPv6 one (which has a colon) is cut to its subnet,
  // which spares every IPv4 request the library's long IPv6 pattern.
  return limiter('ip', options, (req) => {
    const ip = req.clientAddress ?? 'unknown';
    return ip.includes(':') ? ipKeyGenerator(ip) : ip;
  });
}

export function perUserLimit(options: RateLimitOptions): RequestHandler {
  return limiter('user', options, (req) => `user:${req.userId ?? ''}`);
}
