/**
 * The service as the benchmarks run it: the built entry point, production mode, a fixed
 * secret, limits raised so that only the code under test bounds throughput (the limiters
 * still run on every request), and a small JSON client for setting up fixtures.
 */
import { promises as fs } from 'node:fs';
import jwt from 'jsonwebtoken';
import { makeTempDir } from '../helpers/test-app';
import { serviceArgs, start, type Running } from './processes';
import { profilerFor, profilingLaunch, type Profiler } from './profiler';

export const BENCH_SECRET = 'bench-secret-that-is-long-enough-for-hs256-0123456789';
const GiB = 1024 ** 3;

export function tokenFor(userId: string): string {
  return jwt.sign({ sub: userId }, BENCH_SECRET, { algorithm: 'HS256', expiresIn: 3600 });
}

export function bearer(userId: string): Record<string, string> {
  return { Authorization: `Bearer ${tokenFor(userId)}` };
}

export function tempDir(label: string): Promise<string> {
  return makeTempDir(`sv-bench-${label}-`);
}

export interface Service extends Running {
  dataDir: string;
  /** With `--profile`: starts and stops V8's profiler in the service. */
  profiler?: Profiler;
  /** A JSON request as `userId`; throws unless the answer is 2xx. */
  call<T = unknown>(userId: string, method: string, route: string, body?: unknown): Promise<T>;
}

/**
 * The environment a measured service runs with: production, a fixed secret, and rate limits
 * raised so that only the code under test bounds throughput (the limiters still run).
 */
export function measuredServiceEnv(dataDir: string): Record<string, string> {
  return {
    NODE_ENV: 'production',
    DATA_DIR: dataDir,
    JWT_SECRET: BENCH_SECRET,
    LOG_LEVEL: 'info',
    RATE_LIMIT_MAX: '10000000',
    RATE_LIMIT_IP_MAX: '10000000',
  };
}

export async function startService(
  dataDir: string,
  env: Record<string, string> = {},
  keep?: (line: Record<string, unknown>) => boolean,
): Promise<Service> {
  const profiling = profilingLaunch();
  const running = await start({
    args: [...(profiling?.args ?? []), ...serviceArgs()],
    env: {
      ...measuredServiceEnv(dataDir),
      MAX_UPLOAD_BYTES: String(GiB),
      USER_QUOTA_BYTES: String(64 * GiB),
      ...env,
      ...profiling?.env,
    },
    ...(keep ? { keep } : {}),
  });
  const profiler = profilerFor(running.pid);
  return {
    ...running,
    ...(profiler ? { profiler } : {}),
    dataDir,
    call: async <T>(userId: string, method: string, route: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${running.url}${route}`, {
        method,
        headers: { ...bearer(userId), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
      return (text ? JSON.parse(text) : undefined) as T;
    },
  };
}

/**
 * Stops the service as an orchestrator does: SIGTERM, then it drains, closes its storage
 * (the filesystem backend writes its listing summaries) and exits. Throws unless it exits 0.
 */
export async function stopGracefully(service: Running): Promise<void> {
  process.kill(service.pid, 'SIGTERM');
  const code = await service.exited;
  if (code !== 0) throw new Error(`the service exited with ${code} after SIGTERM`);
}

/** A graceful stop, then the service started again on the same data directory. */
export async function restartService(service: Service, env: Record<string, string> = {}): Promise<Service> {
  await stopGracefully(service);
  return startService(service.dataDir, env);
}

/** Scopes not yet closed, for a bench stopped by a signal (its `finally`s never run then). */
const openScopes = new Set<{ close(): Promise<void> }>();

/** Closes every scope still open: its processes stopped, its databases dropped, its directories removed. */
export async function closeOpenScopes(): Promise<void> {
  const results = await Promise.allSettled([...openScopes].map((scope) => scope.close()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * What a scenario group starts and creates, to stop and remove in one place whatever happens:
 * processes first, then whatever was deferred (a database to drop), then directories.
 */
export function scenarioScope() {
  const dirs: string[] = [];
  const running: Running[] = [];
  const deferred: Array<() => Promise<unknown>> = [];
  let closed: Promise<void> | undefined;
  const scope = {
    async dir(label: string): Promise<string> {
      const made = await tempDir(label);
      dirs.push(made);
      return made;
    },
    async track<T extends Running>(started: Promise<T>): Promise<T> {
      const process = await started;
      running.push(process);
      return process;
    },
    /** Runs `cleanUp` on close, after the processes have stopped. */
    defer(cleanUp: () => Promise<unknown>): void {
      deferred.push(cleanUp);
    },
    close(): Promise<void> {
      closed ??= (async () => {
        await Promise.allSettled(running.map((p) => p.stop()));
        const results = await Promise.allSettled(deferred.map((cleanUp) => cleanUp()));
        await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
        openScopes.delete(scope);
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      })();
      return closed;
    },
  };
  openScopes.add(scope);
  return scope;
}
