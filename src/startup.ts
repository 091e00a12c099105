/**
 * Everything that must happen before the first request: open the data directory, finish
 * interrupted writes' clean-up, delete legacy data, load the JWT key. Returns the app's
 * dependencies, or one line per problem for the entry point to print.
 */
import type { Config } from './config';
import { loadJwtKeys, type JwtKeys } from './auth/keys';
import { TokenVerifier } from './auth/token-verifier';
import type { AppDeps } from './app';
import type { Logger } from './logger';
import { clearStaging, isDataDirectoryWritable, openDataDirectory } from './storage/data-directory';
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
}

export type PrepareResult = { ok: true; service: PreparedService } | { ok: false; errors: string[] };

const LOGGED_NAMES = 50;

export async function prepareService(config: Config, logger: Logger): Promise<PrepareResult> {
  let paths: DataPaths;
  try {
    paths = await openDataDirectory(config.dataDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unusable';
    return { ok: false, errors: [`DATA_DIR: cannot be created or written (${code})`] };
  }
  if (!(await isDataDirectoryWritable(paths))) {
    return { ok: false, errors: ['DATA_DIR: is not writable'] };
  }

  const interrupted = await clearStaging(paths);
  if (interrupted > 0) logger.info('removed interrupted writes', { count: interrupted });

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

  const keysResult = await loadJwtKeys(config, paths.devSecret);
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
      deps: {
        logger,
        verifier,
        backend: new FsBackend(paths, { sessionCacheBytes: config.sessionCacheBytes }),
        readiness: { started: () => started, dataDirectoryWritable: () => isDataDirectoryWritable(paths) },
      },
    },
  };
}
