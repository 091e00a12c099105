/**
 * Fresh storage of one of TEST_BACKENDS, opened through openBackend exactly as the service
 * opens it, for the contract suite: the only place tests/storage/ turns a backend's name
 * into opened storage. Closing gives the storage up, then removes it.
 */
import type { OpenedStorage } from '../../src/storage';
import { openBackend } from '../../src/storage';
import { silentLogger } from '../../src/logger';
import type { PostgresOpenedStorage } from '../../src/storage/postgres/open';
import { TEST_BACKENDS } from '../helpers/backends';
import { configFor } from '../helpers/test-app';
import { contractSubject, type OpenedContractSubject } from './contract';

export interface StorageUnderTest {
  storage: OpenedStorage;
  close(): Promise<void>;
}

/** `env` overrides the entry's settings (e.g. another blob store beside the same backend). */
export async function openStorageUnderTest(backendName: string, env: Record<string, string> = {}): Promise<StorageUnderTest> {
  const entry = TEST_BACKENDS.find((b) => b.name === backendName);
  if (!entry) throw new Error(`no test backend named ${backendName}`);
  const under = await entry.setUp();
  try {
    const opened = await openBackend(configFor({ ...under.env, ...env }).storage, silentLogger());
    if (!opened.ok) throw new Error(opened.errors.join('\n'));
    const { storage } = opened;
    return {
      storage,
      close: async () => {
        try {
          await storage.close();
        } finally {
          await under.tearDown();
        }
      },
    };
  } catch (error) {
    await under.tearDown();
    throw error;
  }
}

/** The contract's subject on fresh storage of `backendName`. */
export async function openContractSubject(backendName: string, env: Record<string, string> = {}): Promise<OpenedContractSubject> {
  const { storage, close } = await openStorageUnderTest(backendName, env);
  // A backend with background work (the PostgreSQL outbox) does it now, when a case asks.
  const maintenance = (storage as Partial<PostgresOpenedStorage>).maintenance;
  return { ...contractSubject(storage, async () => maintenance?.drainAll()), close };
}
