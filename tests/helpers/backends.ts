/**
 * The storage backends every backend-agnostic test runs against. Each entry gives the
 * environment that selects the backend on fresh, empty storage of its own, and removes that
 * storage afterwards. A new backend is one more entry here.
 */
import { rm } from 'node:fs/promises';
import { makeTempDir } from './temp-dir';

export interface BackendUnderTest {
  /** The environment (STORAGE_BACKEND and its settings) selecting fresh storage. */
  env: Record<string, string>;
  /** The data directory, for settings every backend shares (the dev secret); never to look inside. */
  dataDir: string;
  tearDown(): Promise<void>;
}

export interface TestBackend {
  name: string;
  setUp(): Promise<BackendUnderTest>;
}

export const TEST_BACKENDS: TestBackend[] = [
  {
    name: 'fs',
    setUp: async () => {
      const dataDir = await makeTempDir();
      return { env: { STORAGE_BACKEND: 'fs', DATA_DIR: dataDir }, dataDir, tearDown: () => rm(dataDir, { recursive: true, force: true }) };
    },
  },
];
