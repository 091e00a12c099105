import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { TEST_SECRET, makeTempDir } from '../helpers/test-app';
import { logLines, startServer, type ServerProcess } from '../helpers/server-process';

const run = promisify(execFile);
let dataDir: string;
const servers: ServerProcess[] = [];

beforeEach(async () => {
  dataDir = await makeTempDir();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await rm(dataDir, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await startServer({ DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET, RATE_LIMIT_MAX: '1000000', RATE_LIMIT_IP_MAX: '1000000', ...env });
  servers.push(server);
  return server;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('the real process', () => {
  it('mints a dev token with `npm run token` that the dev server accepts, with no set-up', async () => {
    const env = { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, NODE_ENV: 'development' };
    const { stdout } = await run(path.join('node_modules', '.bin', 'tsx'), ['src/cli/mint-token.ts', 'alice'], { env });
    const token = stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect((await stat(path.join(dataDir, '.dev-jwt-secret'))).mode & 0o777).toBe(0o600);
    const server = await start({ NODE_ENV: 'development', JWT_SECRET: '' });
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { userId: string }).userId).toBe('alice');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it('finishes legacy cleanup before it accepts the first connection', async () => {
    for (let i = 0; i < 1500; i++) {
      const dir = path.join(dataDir, 'sessions', randomUUID());
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'state.json'), '{"legacy":true}');
    }
    const port = await freePort();
    const starting = start({ PORT: String(port) });
    let connected = false;
    while (!connected) {
      connected = await canConnect(port);
      if (!connected) await new Promise((r) => setTimeout(r, 2));
    }
    // At the first moment a client can connect, no legacy session is left.
    expect(await readdir(path.join(dataDir, 'sessions'))).toEqual([]);
    const server = await starting;
    const lines = logLines(server.stdout());
    const cleanupAt = lines.findIndex((l) => l.message === 'legacy cleanup' && l.category === 'cleanup');
    const listeningAt = lines.findIndex((l) => l.message === 'listening');
    expect(cleanupAt).toBeGreaterThanOrEqual(0);
    expect(cleanupAt).toBeLessThan(listeningAt);
    expect(lines[cleanupAt]).toMatchObject({ count: 1500, bytes: 1500 * 15, more: 1450 });
  });

  it('loses no acknowledged write and leaves no torn file when killed with SIGKILL mid-write', async () => {
    const token = (await import('jsonwebtoken')).default.sign({ sub: 'alice' }, TEST_SECRET, { expiresIn: 600 });
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };

    for (const killAfterMs of [150, 300, 450]) {
      let server = await start();
      const created = await fetch(`${server.url}/api/v1/sessions`, { method: 'POST', headers, body: '{}' });
      const sessionId = ((await created.json()) as { id: string }).id;
      const ackedMessages = new Map<string, number>();
      let maxAckedVersion = 1;
      let stop = false;

      const appender = async (w: number) => {
        for (let i = 0; !stop; i++) {
          try {
            const res = await fetch(`${server.url}/api/v1/sessions/${sessionId}/messages`, {
              method: 'POST',
              headers,
              body: JSON.stringify({ role: 'user', content: `w${w}-${i}` }),
            });
            if (res.status === 201) ackedMessages.set(`w${w}-${i}`, ((await res.json()) as { seq: number }).seq);
          } catch {
            return; // the connection died with the process: not acknowledged
          }
        }
      };
      const patcher = async (w: number) => {
        for (let i = 0; !stop; i++) {
          try {
            const res = await fetch(`${server.url}/api/v1/sessions/${sessionId}`, {
              method: 'PATCH',
              headers,
              body: JSON.stringify({ state: { w, i, pad: 'x'.repeat(2000) } }),
            });
            if (res.status === 200) maxAckedVersion = Math.max(maxAckedVersion, ((await res.json()) as { version: number }).version);
          } catch {
            return;
          }
        }
      };
      const workers = [...Array.from({ length: 6 }, (_, w) => appender(w)), ...Array.from({ length: 3 }, (_, w) => patcher(w))];
      await new Promise((r) => setTimeout(r, killAfterMs));
      server.proc.kill('SIGKILL');
      await server.exited;
      stop = true;
      await Promise.all(workers);
      expect(ackedMessages.size).toBeGreaterThan(0);

      server = await start();
      const session = (await (await fetch(`${server.url}/api/v1/sessions/${sessionId}`, { headers })).json()) as { version: number };
      expect(session.version).toBeGreaterThanOrEqual(maxAckedVersion);

      const stored: Array<{ seq: number; content: string }> = [];
      let after = 0;
      for (;;) {
        const page = (await (await fetch(`${server.url}/api/v1/sessions/${sessionId}/messages?limit=200&after=${after}`, { headers })).json()) as {
          items: Array<{ seq: number; content: string }>;
          nextCursor: number | null;
        };
        stored.push(...page.items);
        if (page.nextCursor === null) break;
        after = page.nextCursor;
      }
      expect(stored.map((m) => m.seq)).toEqual(stored.map((_, i) => i + 1));
      const bySeq = new Map(stored.map((m) => [m.content, m.seq]));
      for (const [content, seq] of ackedMessages) expect(bySeq.get(content)).toBe(seq);
      expect(await readdir(path.join(dataDir, '.staging'))).toEqual([]);
      // On disk: the document is whole JSON and the log is whole lines.
      const sessionDir = path.join(dataDir, 'sessions', 'alice', sessionId);
      expect(JSON.parse(await readFile(path.join(sessionDir, 'session.json'), 'utf8')).version).toBe(session.version);
      const log = await readFile(path.join(sessionDir, 'messages.jsonl'), 'utf8');
      expect(log.endsWith('\n')).toBe(true);
      expect(log.trimEnd().split('\n').map((l) => JSON.parse(l).seq)).toEqual(stored.map((m) => m.seq));
      await server.stop();
      servers.splice(servers.indexOf(server), 1);
    }
  });
});
