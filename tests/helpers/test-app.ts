/** Builds the real app on a fresh temp data dir, the same way the entry point does. */
import { rm } from 'node:fs/promises';
import jwt from 'jsonwebtoken';
import type { Express } from 'express';
import { createApp } from '../../src/app';
import { loadConfig, type Config } from '../../src/config';
import { silentLogger, type Logger } from '../../src/logger';
import { prepareService, type PreparedService } from '../../src/startup';
import { makeTempDir } from './temp-dir';

export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256!';

export interface TestApp {
  app: Express;
  config: Config;
  dataDir: string;
  service: PreparedService;
  token(userId: string, claims?: Record<string, unknown>): string;
  /** Gives the data directory up, as a process that exits does, so another app can open it. */
  stop(): Promise<void>;
  /** Stops and removes the data directory. */
  close(): Promise<void>;
}

export { makeTempDir };

export function configFor(env: Record<string, string>): Config {
  const result = loadConfig({ NODE_ENV: 'test', JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'error', ...env });
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.config;
}

export async function startTestApp(
  env: Record<string, string> = {},
  options: { dataDir?: string; logger?: Logger; now?: () => Date } = {},
): Promise<TestApp> {
  const dataDir = options.dataDir ?? (await makeTempDir());
  const config = configFor({ DATA_DIR: dataDir, ...env });
  const prepared = await prepareService(config, options.logger ?? silentLogger());
  if (!prepared.ok) throw new Error(prepared.errors.join('\n'));
  const deps = options.now ? { ...prepared.service.deps, now: options.now } : prepared.service.deps;
  return {
    app: createApp(config, deps),
    config,
    dataDir,
    service: prepared.service,
    token: (userId, claims = {}) =>
      jwt.sign({ sub: userId, ...claims }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 }),
    stop: () => prepared.service.release(),
    close: async () => {
      await prepared.service.release();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function bearer(token: string): { Authorization: string } {
  return { Authorization: `Bearer ${token}` };
}

/** The same data directory opened by a new app, as after a process restart. */
export async function restartTestApp(previous: TestApp, env: Record<string, string> = {}): Promise<TestApp> {
  await previous.stop();
  return startTestApp(env, { dataDir: previous.dataDir });
}
