/**
 * The README's "A first session with curl", run as a reader pastes it: the fenced block taken
 * from the README itself, run by bash at the root of the clone against a real service in
 * development mode (so `npm run -s token` signs with the dev secret the service generated).
 * The one change: the service's address, since port 3000 may be taken on a test machine.
 * Every request's printed status must be the one its `# -> NNN` comment promises.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type ServerProcess } from '../helpers/server-process';
import { makeTempDir } from '../helpers/test-app';

const ROOT = path.join(__dirname, '..', '..');
jest.setTimeout(120_000);

async function walkthrough(): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## A first session with curl\n');
  const end = readme.indexOf('\n## ', start + 1);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start, end));
  if (start < 0 || !block) throw new Error('README: no sh block under "A first session with curl"');
  return block[1]!;
}

let dataDir: string;
let scratch: string;
let service: ServerProcess;
beforeAll(async () => {
  dataDir = await makeTempDir();
  scratch = await makeTempDir();
  service = await startServer({ NODE_ENV: 'development', DATA_DIR: dataDir });
});
afterAll(async () => {
  await service?.stop();
  for (const dir of [dataDir, scratch]) if (dir) await rm(dir, { recursive: true, force: true });
});

it('works pasted into bash, every request answering with the status its comment promises', async () => {
  const block = await walkthrough();
  const promised = [...block.matchAll(/^# -> (\d{3})\b/gm)].map((m) => m[1]);
  // Every curl has its promise: a step without one would go unchecked.
  expect(promised).toHaveLength([...block.matchAll(/^curl /gm)].length);
  expect(promised.length).toBeGreaterThanOrEqual(10);
  expect(block.split('http://localhost:3000').length).toBe(2);
  const script = block.replace('http://localhost:3000', service.url);

  const bash = spawn('bash', ['-c', script], {
    cwd: ROOT,
    // DATA_DIR: where `npm run token` finds the dev secret; TMPDIR: where `mktemp -d` makes the scratch directory.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', DATA_DIR: dataDir, TMPDIR: scratch },
  });
  let stdout = '';
  let stderr = '';
  bash.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  bash.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [code] = (await once(bash, 'exit')) as [number | null];

  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  const printed = stdout.split('\n').filter((line) => /^\d{3}$/.test(line));
  expect(printed).toEqual(promised);
  expect(stdout).toContain('downloads/budget.csv: the same bytes');
  expect(stdout).toContain('"content":"Lisbon."');
});
