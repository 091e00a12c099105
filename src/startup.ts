/**
 * Everything that must happen before the first request: open the storage backend (which
 * does its own recovery and legacy cleanup), load the JWT keys (a JWKS's first fetch), set up listing cursors and
 * the rate-limit counters (a Redis that cannot be reached is logged, never fatal).
 * Returns the app's dependencies, or one line per problem for the entry point to print.
 */
import type { Config } from './config';
import { TokenVerifier } from './auth/token-verifier';
import { openVerificationKeys } from './auth/verification-keys';
import type { AppDeps } from './app';
import { openRateLimitStores, type RateLimitStores } from './http/rate-limit-store';
import type { Logger } from './logger';
import type { MetricsRecorder } from './metrics/recorder';
import { timedPort } from './metrics/timed-port';
import type { Tracing } from './tracing/tracing';
import { CursorCodec } from './sessions/listing-cursor';
import { openBackend, type OpenedStorage } from './storage';

export interface PreparedService {
  deps: AppDeps;
  storage: OpenedStorage;
  /** The rate-limit counters' connection (Redis), closed after the drain like the storage. */
  rateLimit: RateLimitStores;
  /** Flip to make /readyz answer 503 (shutdown). */
  setStarted(started: boolean): void;
  /** Closes the rate-limit store and the storage backend (gives its data up for another process); exiting does the same. */
  release(): Promise<void>;
}

export type PrepareResult = { ok: true; service: PreparedService } | { ok: false; errors: string[] };

/** What observes the service, each only when turned on. */
export interface Observers {
  /** METRICS=on: told about every storage call and the backend's own timings. */
  metrics?: MetricsRecorder | undefined;
  /** OTEL_EXPORTER_OTLP_ENDPOINT set: a span for every storage call. */
  tracing?: Tracing | undefined;
}

export async function prepareService(config: Config, logger: Logger, observers: Observers = {}): Promise<PrepareResult> {
  const { metrics } = observers;
  const opened = await openBackend(config.storage, logger, metrics);
  if (!opened.ok) return opened;
  const { storage } = opened;
  const prepared = await prepareWithStorage(config, logger, storage, observers).catch(async (error: unknown) => {
    await storage.close();
    throw error;
  });
  if (!prepared.ok) await storage.close();
  return prepared;
}

/** A storage port as the app sees it: timed and traced when those are on. */
function observedPort<T extends object>(port: T, name: string, { metrics, tracing }: Observers): T {
  const timed = metrics ? timedPort(port, name, metrics) : port;
  return tracing ? tracing.tracedPort(timed, name) : timed;
}

async function prepareWithStorage(config: Config, logger: Logger, storage: OpenedStorage, observers: Observers): Promise<PrepareResult> {
  const { metrics, tracing } = observers;
  // Listing cursors stay valid across restarts: the key is configured, or kept by the backend.
  const cursors = new CursorCodec(
    config.cursorSecret !== undefined ? Buffer.from(config.cursorSecret, 'utf8') : await storage.cursorKey(),
  );

  const opened = await openVerificationKeys(config, logger);
  if (!opened.ok) return opened;
  const { keys } = opened;
  if (config.production && (config.jwt.issuer === undefined || config.jwt.audience === undefined)) {
    logger.warn('JWT_ISSUER or JWT_AUDIENCE is unset: tokens from any issuer or for any audience that share the key are accepted');
  }

  let started = true;
  const verifier = new TokenVerifier({
    keys: keys.resolver,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    userClaim: config.jwt.userClaim,
    clockToleranceSeconds: config.jwt.clockToleranceSeconds,
  });
  // Last, so that nothing after it can fail and leave its connection open.
  const rateLimit = await openRateLimitStores(config.rateLimit, logger);
  return {
    ok: true,
    service: {
      storage,
      rateLimit,
      setStarted: (value) => {
        started = value;
      },
      release: async () => {
        keys.close();
        await rateLimit.close();
        await storage.close();
      },
      deps: {
        logger,
        verifier,
        backend: observedPort(storage.backend, 'metadata', observers),
        blobs: observedPort(storage.blobs, 'blobs', observers),
        ...(metrics ? { metrics } : {}),
        ...(tracing ? { tracing } : {}),
        cursors,
        ...(rateLimit.stores ? { rateLimitStores: rateLimit.stores } : {}),
        readiness: { started: () => started, storageReady: () => storage.ready() },
      },
    },
  };
}
