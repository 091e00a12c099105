/**
 * A private redis-server for tests that take Redis away: on a free port of its own, in
 * memory only (no RDB, no AOF), started, killed, paused and started again on the same port
 * by the test. Never part of the service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './free-port';

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** Starts it (again) on its port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGKILL, as a crash; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP: connections stay open and nothing answers, as a Redis that hangs. */
  pause(): void;
  resume(): void;
}

/** A redis-server on `port` (default: a free one), not started yet. */
export async function privateRedis(port?: number): Promise<PrivateRedis> {
  const chosen = port ?? (await freePort());
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  return {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    async start() {
      if (proc) throw new Error('redis-server is running already');
      const child = spawn('redis-server', ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc = child;
      exited = new Promise((resolve) => child.once('exit', () => resolve()));
      let output = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`redis-server did not get ready in time:\n${output}`)), 30_000);
        child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
          output += chunk;
          if (output.includes('Ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`redis-server exited with ${code}:\n${output}`));
        });
      }).catch((error: unknown) => {
        proc = undefined;
        throw error;
      });
    },
    async kill() {
      if (!proc) return;
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
      await exited;
      proc = undefined;
    },
    pause() {
      proc?.kill('SIGSTOP');
    },
    resume() {
      proc?.kill('SIGCONT');
    },
  };
}
