/**
 * `npm run example` (examples/spa/run.ts) as a real process: when the example's port is taken
 * it says so in one line, exits 1, and stops the service it had already started, so no
 * service process is left behind holding PORT and the data directory.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '../helpers/free-port';
import { makeTempDir } from '../helpers/test-app';

const ROOT = path.join(__dirname, '..', '..');
jest.setTimeout(90_000);

/** Pids of processes whose environment holds this exact variable (unreadable ones are gone or not ours). */
async function processesWith(variable: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if ((await readFile(`/proc/${entry}/environ`, 'utf8')).split('\0').includes(variable)) found.push(Number(entry));
    } catch {
      // exited while we looked, or not readable
    }
  }
  return found;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

let busy: net.Server;
let dataDir: string;
afterAll(async () => {
  busy?.close();
  if (dataDir) {
    // Should the test fail, a service it left behind still holds its pipes: stop it by its pid.
    for (const pid of await processesWith(`DATA_DIR=${dataDir}`)) process.kill(pid, 'SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
});

it('with EXAMPLE_PORT busy, exits 1 with a clear line and leaves no service running', async () => {
  busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const examplePort = (busy.address() as net.AddressInfo).port;
  const apiPort = await freePort();
  dataDir = await makeTempDir();

  const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), [path.join(ROOT, 'examples', 'spa', 'run.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, PORT: String(apiPort), EXAMPLE_PORT: String(examplePort), LOG_FORMAT: 'json' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // 'exit', not 'close': a service left behind would keep the inherited pipes open.
  const [code] = (await once(child, 'exit')) as [number | null];

  // The service had started (so there was something to stop), then was stopped.
  expect(stdout).toContain('listening');
  expect(code).toBe(1);
  expect(stderr).toContain(`example: EXAMPLE_PORT ${examplePort} is in use on 127.0.0.1; free it or choose another`);
  expect(stderr).toContain('example: stopped the service it started');
  expect(await processesWith(`DATA_DIR=${dataDir}`)).toEqual([]);
  expect(await refused(apiPort)).toBe(true);
});
