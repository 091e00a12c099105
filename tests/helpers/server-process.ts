/** Starts the built entry point (`node dist/server.js`) as a real process. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

export const ENTRY_POINT = path.join(__dirname, '..', '..', 'dist', 'server.js');

export interface ServerProcess {
  proc: ChildProcessWithoutNullStreams;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A command the entry point runs under (e.g. `setpriv` with fewer privileges); none by default. */
export type Wrapper = string[];

function launch(env: Record<string, string>, wrapper: Wrapper = []) {
  const [command, ...args] = [...wrapper, process.execPath, ENTRY_POINT];
  const proc = spawn(command!, args, {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
  });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { proc, exited, stdout: () => out, stderr: () => err };
}

/** Runs the entry point expecting it to exit by itself (startup failures). */
export async function runToExit(env: Record<string, string>, timeoutMs = 15_000, wrapper: Wrapper = []): Promise<Finished> {
  const p = launch(env, wrapper);
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), timeoutMs);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

export function logLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Starts the server and resolves once it logs that it listens. */
export async function startServer(env: Record<string, string>, timeoutMs = 30_000, wrapper: Wrapper = []): Promise<ServerProcess> {
  const p = launch(env, wrapper);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line in time:\n${p.stdout()}\n${p.stderr()}`)), timeoutMs);
    const check = () => {
      const line = logLines(p.stdout()).find((l) => l.message === 'listening');
      if (line) {
        clearTimeout(timer);
        resolve(line.port as number);
      }
    };
    p.proc.stdout.on('data', check);
    void p.exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${p.stderr()}`));
    });
  });
  return {
    ...p,
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
      await p.exited;
    },
  };
}
