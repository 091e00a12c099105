/**
 * `.env` in the working directory, read by the real process with Node's loadEnvFile: its
 * variables apply, and a variable the real environment already sets wins over the file.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TEST_SECRET, makeTempDir } from '../helpers/test-app';
import { ENTRY_POINT, logLines } from '../helpers/server-process';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
  await mkdir(path.join(dir, 'cwd'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts the entry point in `cwd` and resolves with its log lines once it listens. */
async function startIn(cwd: string, env: Record<string, string>): Promise<Array<Record<string, unknown>>> {
  const proc = spawn(process.execPath, [ENTRY_POINT], { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', () => {
        if (logLines(out).some((l) => l.message === 'listening')) resolve();
      });
      void exited.then(() => reject(new Error(`exited ${String(proc.exitCode)}: ${err}`)));
    });
    return logLines(out);
  } finally {
    proc.kill('SIGKILL');
    await exited;
  }
}

it('applies the file, and the real environment wins over it', async () => {
  const cwd = path.join(dir, 'cwd');
  const fromFile = path.join(dir, 'data-from-env-file');
  await writeFile(
    path.join(cwd, '.env'),
    [`NODE_ENV=production`, `DATA_DIR=${fromFile}`, `JWT_SECRET=${TEST_SECRET}`, 'HOST=127.0.0.1', 'PORT=0', '# a comment', ''].join('\n'),
  );
  const lines = await startIn(cwd, { NODE_ENV: 'test' });
  expect(lines.find((l) => l.message === 'read .env')).toMatchObject({ file: path.join(cwd, '.env') });
  // NODE_ENV from the real environment, DATA_DIR from the file.
  expect(lines.find((l) => l.message === 'listening')).toMatchObject({ env: 'test', dataDir: fromFile });
});

it('without a .env, reads nothing and says nothing about it', async () => {
  const bare = path.join(dir, 'bare');
  await mkdir(bare);
  const lines = await startIn(bare, { NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', DATA_DIR: path.join(bare, 'data'), JWT_SECRET: TEST_SECRET });
  expect(lines.some((l) => l.message === 'read .env')).toBe(false);
  expect(lines.find((l) => l.message === 'listening')).toMatchObject({ env: 'test' });
});
