/**
 * `npm run bench -- --profile <scenario>`: every service the bench starts gets
 * profile-preload.cjs, and the subject of each measured pair is profiled across its measured
 * turns (not its warm-up); the rows whose scenario matches get the profile's top modules by
 * self time printed after the table. The profiler costs throughput of its own, so the figures
 * of a profiled run are not comparable with a plain run's.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const PRELOAD = path.join(__dirname, 'profile-preload.cjs');

let profileDir: string | undefined;

/** Turns profiling on for the services started from now on; the profiles go to `dir`. */
export function profileServicesInto(dir: string): void {
  profileDir = dir;
}

/** The node arguments and environment that make a service profilable, when profiling is on. */
export function profilingLaunch(): { args: string[]; env: Record<string, string> } | undefined {
  return profileDir === undefined ? undefined : { args: ['--require', PRELOAD], env: { BENCH_PROFILE_DIR: profileDir } };
}

export interface Profiler {
  start(): void;
  /** Stops and resolves to the written .cpuprofile file. */
  stop(): Promise<string>;
}

export function profilerFor(pid: number): Profiler | undefined {
  const dir = profileDir;
  if (dir === undefined) return undefined;
  let taken = 0;
  return {
    start: () => process.kill(pid, 'SIGUSR2'),
    stop: async () => {
      process.kill(pid, 'SIGUSR2');
      const file = path.join(dir, `${pid}-${++taken}.cpuprofile`);
      const deadline = performance.now() + 60_000;
      while (!existsSync(file)) {
        if (performance.now() > deadline) throw new Error(`no profile from ${pid} within 60 s`);
        await sleep(20);
      }
      return file;
    },
  };
}

/** The profiler of a side's target, if it is a profiled service (never a replica set or a baseline). */
export function profilerOf(target: unknown): Profiler | undefined {
  return typeof target === 'object' && target !== null && 'profiler' in target ? (target as { profiler?: Profiler }).profiler : undefined;
}
