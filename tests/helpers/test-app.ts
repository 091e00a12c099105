/**
 * Builds the real app the way the entry point does, on fresh storage of a backend under test
 * (tests/helpers/backends.ts), and runs a file's tests once per backend. The storage belongs
 * to the app: close() tears it down, a restart opens the same storage in a new app.
 */
import { rm } from 'node:fs/promises';
import jwt from 'jsonwebtoken';
import type { Express } from 'express';
import { createApp } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { silentLogger, type Logger } from '../../src/logger';
import { prepareService, type PreparedService } from '../../src/startup';
import { TEST_BACKENDS, type BackendUnderTest, type TestBackend } from './backends';
import { makeTempDir } from './temp-dir';

export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256!';

export interface TestApp {
  app: Express;
  config: Config;
  /** What the app runs on; restartTestApp opens it again. */
  storage: BackendUnderTest;
  /**
   * The data directory. The fs backend keeps everything there, so tests under
   * tests/storage/fs look inside; for any other backend it holds nothing a test may rely on.
   */
  dataDir: string;
  service: PreparedService;
  token(userId: string, claims?: Record<string, unknown>): string;
  /** Gives the storage up, as a process that exits does, so another app can open it. */
  stop(): Promise<void>;
  /** Stops and tears the storage down. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** The backend to run on fresh storage of; the first of TEST_BACKENDS (fs) by default. */
  backend?: TestBackend;
  /** Storage set up already (a restart): opened as it is, torn down by this app's close(). */
  storage?: BackendUnderTest;
  /** fs-only tests that prepare a data directory themselves: the fs backend on it, removed by close(). */
  dataDir?: string;
  logger?: Logger;
  now?: () => Date;
}

export { makeTempDir };

export function configFor(env: Record<string, string>): Config {
  const result = loadConfig({ NODE_ENV: 'test', JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'error', ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.config;
}

/**
 * Declares a file's tests once per backend under test, each set under a describe naming its
 * backend; every app the tests start must be given `backend`, or it runs on the default.
 */
export function forEachBackend(tests: (backend: TestBackend) => void): void {
  describe.each(TEST_BACKENDS)('on $name', (backend) => tests(backend));
}

function fsStorageAt(dataDir: string): BackendUnderTest {
  return { env: { STORAGE_BACKEND: 'fs', DATA_DIR: dataDir }, dataDir, tearDown: () => rm(dataDir, { recursive: true, force: true }) };
}

async function storageFor(options: StartOptions): Promise<BackendUnderTest> {
  if (options.storage) return options.storage;
  if (options.dataDir !== undefined) {
    if (options.backend && options.backend.name !== 'fs') throw new Error(`a data directory is fs storage, not ${options.backend.name}`);
    return fsStorageAt(options.dataDir);
  }
  return (options.backend ?? TEST_BACKENDS[0]!).setUp();
}

async function prepare(env: Record<string, string>, logger: Logger | undefined): Promise<{ config: Config; service: PreparedService }> {
  const config = configFor(env);
  const prepared = await prepareService(config, logger ?? silentLogger());
  if (!prepared.ok) throw new Error(prepared.errors.join('\n'));
  return { config, service: prepared.service };
}

export async function startTestApp(env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestApp> {
  const storage = await storageFor(options);
  const { config, service } = await prepare({ ...storage.env, ...env }, options.logger).catch(async (error: unknown) => {
    // Storage set up for this app alone is removed if the app never starts; a restart's or the caller's is not.
    if (options.storage === undefined && options.dataDir === undefined) await storage.tearDown();
    throw error;
  });
  const deps = options.now ? { ...service.deps, now: options.now } : service.deps;
  return {
    app: createApp(config, deps),
    config,
    storage,
    dataDir: storage.dataDir,
    service,
    token: (userId, claims = {}) =>
      jwt.sign({ sub: userId, ...claims }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 }),
    stop: () => service.release(),
    close: async () => {
      await service.release();
      await storage.tearDown();
    },
  };
}

export function bearer(token: string): { Authorization: string } {
  return { Authorization: `Bearer ${token}` };
}

/** The same storage opened by a new app, as after a process restart. */
export async function restartTestApp(
  previous: TestApp,
  env: Record<string, string> = {},
  options: Pick<StartOptions, 'logger' | 'now'> = {},
): Promise<TestApp> {
  await previous.stop();
  return startTestApp(env, { ...options, storage: previous.storage });
}
