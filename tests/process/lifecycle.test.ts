import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers/free-port';
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

  it('serves no stale listing summary after a SIGKILL that followed writes: the listing is what the sessions on disk say', async () => {
    const token = (await import('jsonwebtoken')).default.sign({ sub: 'alice' }, TEST_SECRET, { expiresIn: 600 });
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const userDir = path.join(dataDir, 'sessions', 'alice');
    const summary = path.join(dataDir, 'summaries', 'alice.json');
    // Enough sessions for a listing summary, written as the service writes them.
    const seeded: string[] = [];
    for (let i = 0; i < 250; i++) {
      const id = randomUUID();
      const at = new Date(Date.parse('2026-01-01T00:00:00.000Z') + i * 1000).toISOString();
      await mkdir(path.join(userDir, id), { recursive: true });
      await writeFile(path.join(userDir, id, 'session.json'), JSON.stringify({ id, title: `session ${i}`, createdAt: at, updatedAt: at, version: 1, state: {} }));
      seeded.push(id);
    }
    const listing = async (server: ServerProcess) => {
      const items: Array<Record<string, unknown>> = [];
      for (let cursor: string | null = null; ; ) {
        const res = await fetch(`${server.url}/api/v1/sessions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers });
        const page = (await res.json()) as { items: Array<Record<string, unknown>>; nextCursor: string | null };
        items.push(...page.items);
        if (!page.nextCursor) return items;
        cursor = page.nextCursor;
      }
    };
    /** The listing as the documents on disk say it, newest updatedAt first (then the larger id). */
    const onDisk = async () => {
      const documents = await Promise.all(
        (await readdir(userDir)).map(async (id) => {
          const { state: _state, ...listed } = JSON.parse(await readFile(path.join(userDir, id, 'session.json'), 'utf8')) as Record<string, unknown>;
          return listed;
        }),
      );
      const key = (d: Record<string, unknown>) => `${d.updatedAt as string} ${d.id as string}`;
      return documents.sort((a, b) => (key(a) < key(b) ? 1 : -1));
    };

    let server = await start();
    // The first listing loads alice from her sessions and writes her summary in the background.
    expect(await listing(server)).toEqual(await onDisk());
    for (let waited = 0; !(await stat(summary).then(() => true, () => false)); waited += 20) {
      if (waited > 10_000) throw new Error('no listing summary written');
      await new Promise((r) => setTimeout(r, 20));
    }

    let acked = 0;
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const target = seeded[(w * 37 + i) % seeded.length]!;
        const attempt =
          i % 3 === 0
            ? fetch(`${server.url}/api/v1/sessions/${target}`, { method: 'PATCH', headers, body: JSON.stringify({ title: `w${w}-${i}` }) })
            : i % 3 === 1
              ? fetch(`${server.url}/api/v1/sessions/${target}/messages`, { method: 'POST', headers, body: JSON.stringify({ role: 'user', content: `w${w}-${i}` }) })
              : fetch(`${server.url}/api/v1/sessions`, { method: 'POST', headers, body: JSON.stringify({ title: `new w${w}-${i}` }) });
        try {
          if ((await attempt).ok) acked += 1;
        } catch {
          return; // the connection died with the process
        }
      }
    };
    const writers = Array.from({ length: 4 }, (_, w) => writer(w));
    await new Promise((r) => setTimeout(r, 300));
    server.proc.kill('SIGKILL');
    await server.exited;
    stop = true;
    await Promise.all(writers);
    expect(acked).toBeGreaterThan(0);
    // The first write removed the summary before it changed anything; nothing wrote one since.
    expect(await stat(summary).then(() => true, () => false)).toBe(false);

    server = await start();
    expect(await listing(server)).toEqual(await onDisk());
    // A graceful stop writes the summary again, and the next start lists the same from it.
    server.proc.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    expect(JSON.parse(await readFile(summary, 'utf8')).sessions).toHaveLength((await readdir(userDir)).length);
    server = await start();
    expect(await listing(server)).toEqual(await onDisk());
    expect(logLines(server.stdout()).filter((l) => l.message === 'listing summary not used; loading the sessions')).toEqual([]);
  }, 60_000);
});
