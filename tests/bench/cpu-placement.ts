/**
 * Which cores the bench's processes run on. With two cores or more, the load generator (this
 * process: autocannon, the upload and download clients) keeps core 0 to itself, and whatever
 * it measures (the service, every baseline, the raw disk copy, `rm -rf`, `npm start`) runs on
 * the others. Left to the scheduler, the server and the load generator swap cores and share
 * them from one turn to the next, and how often they collide weighs on one side of a ratio
 * more than on the other; placed, each side of a pair gets the same core on its own.
 *
 * `--no-pin` leaves everything to the scheduler, and so does a group whose processes must
 * spread over the cores to mean anything (the replicas group). Linux only (`taskset`, from
 * util-linux); elsewhere nothing is placed.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface Placement {
  /** The load generator's cores, as taskset's list (`0`). */
  load: string;
  /** The measured processes' cores (`1`, or `1-3` on four cores). */
  servers: string;
}

/** Where the load and the servers go on a machine of `cores` cores; undefined below two. */
export function placementFor(cores: number): Placement | undefined {
  if (cores < 2) return undefined;
  return { load: '0', servers: cores === 2 ? '1' : `1-${cores - 1}` };
}

let current: Placement | undefined;

function everyCore(): string {
  return `0-${os.cpus().length - 1}`;
}

/**
 * Places this process (each of its threads) and the processes started from now on; undefined
 * gives them every core again.
 */
export function place(placement: Placement | undefined): void {
  if (process.platform !== 'linux' || (placement === undefined && current === undefined)) return;
  execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', placement?.load ?? everyCore(), String(process.pid)], { stdio: 'ignore' });
  current = placement;
}

/** `command args`, started on the servers' cores when the bench is placed. */
export function onServerCores(command: string, args: string[]): [string, string[]] {
  return current === undefined ? [command, args] : ['taskset', ['--cpu-list', current.servers, command, ...args]];
}

/** How the report names the placement: `load generator on CPU 0, servers on CPU 1`. */
export function describePlacement(placement: Placement | undefined): string {
  return placement === undefined ? 'no CPU placement' : `load generator on CPU ${placement.load}, servers on CPU ${placement.servers}`;
}
