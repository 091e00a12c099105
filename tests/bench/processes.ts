/**
 * Starting the servers under test as real processes, the service and the baselines alike,
 * and reading their memory from /proc. Each gets a free port and counts as started once
 * that port accepts a connection (whatever its log level prints). Its output is drained,
 * with the last lines kept for an error report, so a chatty log never blocks it.
 */
import { StringDecoder } from 'node:string_decoder';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../helpers/free-port';
import { memoryOf, resetPeak } from '../helpers/process-memory';
import { onServerCores } from './cpu-placement';

export const ROOT = path.join(__dirname, '..', '..');
export const SERVICE_ENTRY = path.join(ROOT, 'dist', 'server.js');
export const BASELINES = path.join(__dirname, 'baselines');

export interface Running {
  url: string;
  pid: number;
  /** Milliseconds from spawn to the first accepted connection. */
  startedInMs: number;
  /** Every JSON line the process printed that `keep` accepted. */
  kept: Array<Record<string, unknown>>;
  /** Resolves with the exit code (null when a signal ended it) once the process has exited. */
  exited: Promise<number | null>;
  /** Kills it (SIGKILL) unless it has exited, and waits for the exit. */
  stop(): Promise<void>;
}

export interface StartOptions {
  args: string[];
  env: Record<string, string>;
  /** JSON log lines worth keeping (the legacy cleanup report, say); the rest are dropped. */
  keep?: (line: Record<string, unknown>) => boolean;
  timeoutMs?: number;
}

export function serviceArgs(): string[] {
  return [SERVICE_ENTRY];
}

export function baselineArgs(name: string): string[] {
  return ['--import', 'tsx', path.join(BASELINES, `${name}.ts`)];
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Output kept for an error message: about the last 20 log lines. */
const TAIL_BYTES = 8192;

export async function start(options: StartOptions): Promise<Running> {
  const port = await freePort();
  const startedAt = performance.now();
  const child: ChildProcess = spawn(...onServerCores(process.execPath, options.args), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', ...options.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const kept: Array<Record<string, unknown>> = [];
  // The last few KB of output, for an error message, kept as the bytes that came: this process
  // also drives the load, so decoding and splitting a measured service's every request line
  // would take CPU from autocannon (and be charged to that service's throughput).
  const tailChunks: Buffer[] = [];
  let tailBytes = 0;
  const remember = (chunk: Buffer) => {
    tailChunks.push(chunk);
    tailBytes += chunk.length;
    while (tailBytes - tailChunks[0]!.length >= TAIL_BYTES) tailBytes -= tailChunks.shift()!.length;
  };
  const tail = () => Buffer.concat(tailChunks).subarray(-TAIL_BYTES).toString('utf8');
  let partial = '';
  // A chunk may end inside a character: the decoder keeps its first bytes for the next one.
  const decoder = new StringDecoder('utf8');
  child.stdout!.on('data', (chunk: Buffer) => {
    remember(chunk);
    if (!options.keep) return;
    const lines = (partial + decoder.write(chunk)).split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      if (!text.startsWith('{')) continue;
      try {
        const line = JSON.parse(text) as Record<string, unknown>;
        if (options.keep(line)) kept.push(line);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => remember(chunk));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );

  const deadline = startedAt + (options.timeoutMs ?? 120_000);
  while (!(await accepts(port))) {
    if (exitCode !== undefined) throw new Error(`${options.args.at(-1)} exited with ${exitCode}:\n${tail()}`);
    if (performance.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.args.at(-1)} did not listen in time:\n${tail()}`);
    }
    await sleep(5);
  }

  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    startedInMs: performance.now() - startedAt,
    kept,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Measures how far a process's resident memory rises above where it stood when `work`
 * began: the kernel's peak counter is reset first and read after.
 */
export async function rssGrowthDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; growthBytes: number }> {
  await resetPeak(pid);
  const before = (await memoryOf(pid)).rss;
  const result = await work();
  const { peak } = await memoryOf(pid);
  return { result, growthBytes: Math.max(0, peak - before) };
}
