/**
 * Everything that must happen before the first request: open the data directory, finish
 * interrupted writes' clean-up, delete legacy data, load the JWT key. Returns the app's
 * dependencies, or one line per problem for the entry point to print.
 */
import type { Config } from './config';
import { loadJwtKeys, type JwtKeys } from './auth/keys';
import { TokenVerifier } from './auth/token-verifier';
import type { AppDeps } from './app';
import { securityEvent, type Logger } from './logger';
import type { StorageEvents } from './storage/backend';
import { clearStaging, openDataDirectory, probeDataDirectory, resolveDataDirectory, throttledWritableProbe } from './storage/data-directory';
import { DataDirectoryBusy, DataLockUnusable, lockDataDirectory, type DataLock } from './storage/data-lock';
import { CursorCodec } from './storage/listing-cursor';
import { readOrCreateSecretFile } from './secret-file';
import { FsBackend } from './storage/fs-backend';
import { cleanLegacyData, type CleanupReport } from './storage/legacy-cleanup';
import type { DataPaths } from './storage/paths';

export interface PreparedService {
  deps: AppDeps;
  paths: DataPaths;
  keys: JwtKeys;
  cleanup: CleanupReport;
  /** Flip to make /readyz answer 503 (shutdown). */
  setStarted(started: boolean): void;
  /** Gives the data directory up (its lock) for another process; exiting does the same. */
  release(): Promise<void>;
}

export type PrepareResult = { ok: true; service: PreparedService } | { ok: false; errors: string[] };

const LOGGED_NAMES = 50;

/** Damage is a security event (someone or something changed stored data); a cut tail is recovery. */
function storageEvents(logger: Logger): StorageEvents {
  return {
    sessionDamaged: (userId, sessionId, what) => securityEvent(logger, 'session damaged', { userId, sessionId, what }),
    tornTailCut: (userId, sessionId, bytes) =>
      logger.warn('message log torn tail cut', { category: 'recovery', userId, sessionId, bytes }),
  };
}

/** The lock is part of readiness: an owner whose `.lock` was removed says so, once, and stops being ready. */
function lockWatch(lock: DataLock, logger: Logger): () => Promise<boolean> {
  let reported = false;
  return async () => {
    const held = await lock.stillHeld();
    if (!held && !reported) {
      reported = true;
      logger.error('DATA_DIR/.lock was removed or replaced while this process owns the directory: another process could start on it; restart this one');
    }
    return held;
  };
}

function unusable(error: unknown): PrepareResult {
  const code = (error as NodeJS.ErrnoException).code ?? 'unusable';
  return { ok: false, errors: [`DATA_DIR: cannot be created or written (${code})`] };
}

export async function prepareService(config: Config, logger: Logger): Promise<PrepareResult> {
  // The lock comes first: nothing in the directory (staging, legacy data) is touched by a
  // process that does not own it.
  let lock: DataLock;
  try {
    lock = await lockDataDirectory(await resolveDataDirectory(config.dataDir));
  } catch (error) {
    if (error instanceof DataDirectoryBusy || error instanceof DataLockUnusable) return { ok: false, errors: [`DATA_DIR: ${error.message}`] };
    return unusable(error);
  }
  const prepared = await prepareLockedService(config, logger, lock).catch(async (error: unknown) => {
    await lock.release();
    throw error;
  });
  if (!prepared.ok) await lock.release();
  return prepared;
}

async function prepareLockedService(config: Config, logger: Logger, lock: DataLock): Promise<PrepareResult> {
  let paths: DataPaths;
  try {
    paths = await openDataDirectory(config.dataDir);
  } catch (error) {
    return unusable(error);
  }
  const writable = await probeDataDirectory(paths);
  if (writable === 'refused') return { ok: false, errors: ['DATA_DIR: is not writable'] };
  // A full disk is no reason to stay down: deletes free space, and /readyz says 503 until then.
  if (writable === 'full') logger.error('the data directory has no space left; starting anyway, not ready until it has');

  const staging = await clearStaging(paths);
  if (staging.removed > 0) logger.info('removed interrupted writes', { count: staging.removed });
  if (staging.left.length > 0) logger.warn('left staging entries it cannot remove', { count: staging.left.length, names: staging.left.slice(0, LOGGED_NAMES) });

  const cleanup = await cleanLegacyData(paths, config.legacyCleanup);
  for (const warning of cleanup.warnings) logger.warn('legacy cleanup', { category: 'cleanup', warning });
  logger.info('legacy cleanup', {
    category: 'cleanup',
    mode: cleanup.mode,
    count: cleanup.count,
    bytes: cleanup.bytes,
    names: cleanup.removed.slice(0, LOGGED_NAMES),
    more: Math.max(0, cleanup.removed.length - LOGGED_NAMES),
    durationMs: cleanup.durationMs,
  });

  // Listing cursors stay valid across restarts: the key is configured, or kept beside the data.
  const cursors = new CursorCodec(
    config.cursorSecret !== undefined ? Buffer.from(config.cursorSecret, 'utf8') : await readOrCreateSecretFile(paths.cursorKey),
  );

  const keysResult = await loadJwtKeys(config);
  if (!keysResult.ok) return { ok: false, errors: keysResult.errors };
  const { keys } = keysResult;
  logger.info('jwt verification', { source: keys.source, algorithms: keys.algorithms });
  if (config.production && (config.jwt.issuer === undefined || config.jwt.audience === undefined)) {
    logger.warn('JWT_ISSUER or JWT_AUDIENCE is unset: tokens from any issuer or for any audience that share the key are accepted');
  }

  let started = true;
  const verifier = new TokenVerifier({
    key: keys.verificationKey,
    algorithms: keys.algorithms,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    userClaim: config.jwt.userClaim,
    clockToleranceSeconds: config.jwt.clockToleranceSeconds,
  });
  return {
    ok: true,
    service: {
      paths,
      keys,
      cleanup,
      setStarted: (value) => {
        started = value;
      },
      release: () => lock.release(),
      deps: {
        logger,
        verifier,
        backend: new FsBackend(paths, {
          sessionCacheBytes: config.sessionCacheBytes,
          indexCacheBytes: config.userIndexCacheBytes,
          events: storageEvents(logger),
        }),
        cursors,
        readiness: { started: () => started, dataDirectoryWritable: throttledWritableProbe(paths, lockWatch(lock, logger)) },
      },
    },
  };
}
