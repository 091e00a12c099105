/**
 * For suites that start the built service as real processes: each test gets a fresh data
 * directory, and every server it started is killed and the directory removed after it.
 */
import { rm } from 'node:fs/promises';
import jwt from 'jsonwebtoken';
import { startServer, type ServerProcess, type Wrapper } from './server-process';
import { TEST_SECRET, makeTempDir } from './test-app';

export interface ProcessFixture {
  /** This test's data directory. */
  readonly dataDir: string;
  /** A bearer token for alice, signed with the secret the servers get. */
  readonly token: string;
  readonly auth: { Authorization: string };
  start(env?: Record<string, string>, wrapper?: Wrapper): Promise<ServerProcess>;
  /** Creates a session for alice; its id. */
  newSession(server: ServerProcess): Promise<string>;
}

export function processFixture(): ProcessFixture {
  let dataDir = '';
  const servers: ServerProcess[] = [];
  const token = jwt.sign({ sub: 'alice' }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 });
  const auth = { Authorization: `Bearer ${token}` };
  beforeEach(async () => {
    dataDir = await makeTempDir();
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    await rm(dataDir, { recursive: true, force: true });
  });
  return {
    get dataDir() {
      return dataDir;
    },
    token,
    auth,
    async start(env = {}, wrapper = []) {
      const server = await startServer({ DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET, ...env }, 30_000, wrapper);
      servers.push(server);
      return server;
    },
    async newSession(server) {
      const res = await fetch(`${server.url}/api/v1/sessions`, { method: 'POST', headers: auth });
      return ((await res.json()) as { id: string }).id;
    },
  };
}
