/**
 * The bench's CPU placement: the load generator on core 0, what it measures on the others, and
 * every core again for a group that runs unplaced. The placing itself is checked in a process
 * of its own (it would otherwise pin this test worker), through what the kernel reports.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describePlacement, placementFor } from '../bench/cpu-placement';
import { itIf } from '../helpers/prerequisite';

it('keeps core 0 for the load and gives the servers the rest, from two cores up', () => {
  expect(placementFor(1)).toBeUndefined();
  expect(placementFor(2)).toEqual({ load: '0', servers: '1' });
  expect(placementFor(4)).toEqual({ load: '0', servers: '1-3' });
  expect(describePlacement(placementFor(2))).toBe('load generator on CPU 0, servers on CPU 1');
  expect(describePlacement(undefined)).toBe('no CPU placement');
});

const placing = `
const fs = require('node:fs');
const os = require('node:os');
const { execFileSync } = require('node:child_process');
const { onServerCores, place, placementFor } = require(${JSON.stringify(path.join(__dirname, '..', 'bench', 'cpu-placement.ts'))});
const allowed = (status) => /Cpus_allowed_list:\\s*(\\S+)/.exec(status)[1];
const threads = () => [...new Set(fs.readdirSync('/proc/self/task').map((t) => allowed(fs.readFileSync('/proc/self/task/' + t + '/status', 'utf8'))))];
const server = () => allowed(execFileSync(...onServerCores('cat', ['/proc/self/status']), { encoding: 'utf8' }));
place(placementFor(os.cpus().length));
const placed = { threads: threads(), server: server() };
place(undefined);
console.log(JSON.stringify({ placed, after: { threads: threads(), server: server() } }));
`;

itIf(
  process.platform === 'linux' && os.cpus().length >= 2 ? undefined : 'needs Linux with two cores or more',
  'pins every thread of the bench and each server it starts, and gives them every core back',
  async () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', placing], { encoding: 'utf8' });
    const { placed, after } = JSON.parse(out) as Record<string, { threads: string[]; server: string }>;
    const every = `0-${os.cpus().length - 1}`;
    const servers = placementFor(os.cpus().length)!.servers;
    expect(placed).toEqual({ threads: ['0'], server: servers });
    expect(after).toEqual({ threads: [every], server: every });
  },
  30_000,
);
