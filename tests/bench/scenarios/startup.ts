/**
 * Startup: deleting a large legacy tree against `rm -rf` of an identical tree, and how soon
 * a service with many current sessions (and nothing legacy) is ready, against the same
 * service starting on an empty data directory.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { onServerCores } from '../cpu-placement';
import { writeCurrentSessions, writeLegacySessions } from '../fixtures';
import { median } from '../load';
import type { BenchOptions } from '../options';
import type { Row } from '../report';
import { measuredServiceEnv, startService, tempDir } from '../service';
import { ROOT } from '../processes';
import { freePort } from '../../helpers/free-port';

/** Writes back everything dirty first, so that neither side pays for the other's writes. */
async function sync(): Promise<void> {
  const child = spawn('sync', [], { stdio: 'inherit' });
  await new Promise((resolve) => child.on('exit', resolve));
}

async function rmRf(dir: string): Promise<number> {
  const started = performance.now();
  const child = spawn(...onServerCores('rm', ['-rf', dir]), { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`rm -rf exited with ${code}`);
  return performance.now() - started;
}

/** Milliseconds from spawn until `/readyz` answers 200. */
async function readyInMs(dataDir: string, keep?: (line: Record<string, unknown>) => boolean) {
  const service = await startService(dataDir, { LOG_LEVEL: 'info' }, keep);
  try {
    const ready = await fetch(`${service.url}/readyz`);
    if (ready.status !== 200) throw new Error(`/readyz answered ${ready.status}`);
    return { ms: service.startedInMs, kept: service.kept };
  } finally {
    await service.stop();
  }
}

/** npm's own CLI, run by this node: the one `npm run bench` was started with, or the one beside it. */
function npmCli(): string {
  return process.env.npm_execpath ?? path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
}

/**
 * Milliseconds from running `npm start` (the build step included, with nothing to build) until
 * `/readyz` answers 200: what an operator waits for after a restart.
 */
async function npmStartReadyInMs(dataDir: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  // Its own process group, so npm and the service it runs are stopped together.
  const child = spawn(...onServerCores(process.execPath, [npmCli(), 'start', '--silent']), {
    cwd: ROOT,
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', ...measuredServiceEnv(dataDir), PORT: String(port) },
  });
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  try {
    for (;;) {
      if (exited !== undefined) throw new Error(`npm start exited with ${exited}`);
      if (performance.now() - started > 60_000) throw new Error('npm start: not ready within 60 s');
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((res) => res.status === 200, () => false);
      if (ready) return performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    if (exited === undefined) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid!, 'SIGKILL');
      await gone;
    }
  }
}

export async function startupScenarios(options: BenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const dirs: string[] = [];
  try {
    // Legacy cleanup against rm -rf of the same tree.
    const legacyData = await tempDir('legacy');
    const legacyCopy = await tempDir('legacy-rm');
    dirs.push(legacyData, legacyCopy);
    await writeLegacySessions([legacyData, legacyCopy], options.legacyDirectories);
    await sync();
    const rmMs = await rmRf(path.join(legacyCopy, 'sessions'));
    await sync();
    const started = await readyInMs(legacyData, (line) => line.message === 'legacy cleanup');
    const report = started.kept[0];
    if (!report || report.count !== options.legacyDirectories) {
      throw new Error(`legacy cleanup reported ${JSON.stringify(report)}, expected ${options.legacyDirectories} removed`);
    }
    const cleanupMs = Number(report.durationMs);
    rows.push({
      scenario: `startup with ${options.legacyDirectories.toLocaleString('en')} legacy session dirs: cleanup`,
      unit: 'ms',
      value: cleanupMs,
      baseline: { name: 'rm -rf', value: rmMs },
      ratio: cleanupMs / rmMs,
      extra: `ready in ${started.ms.toFixed(0)} ms`,
      target: '<= 1.5x rm -rf',
      met: cleanupMs <= 1.5 * rmMs,
    });

    // Many current sessions and nothing legacy: startup must not scale with them.
    const empty = await tempDir('empty');
    const current = await tempDir('current');
    dirs.push(empty, current);
    const users = Array.from({ length: options.currentUsers }, (_, i) => `user-${i}`);
    await writeCurrentSessions(current, users, options.currentSessionsPerUser);
    const emptyStarts: number[] = [];
    const currentStarts: number[] = [];
    for (let run = 0; run < 3; run++) {
      emptyStarts.push((await readyInMs(empty)).ms);
      currentStarts.push((await readyInMs(current)).ms);
    }
    const sessions = options.currentUsers * options.currentSessionsPerUser;
    const readyMs = median(currentStarts);
    rows.push({
      scenario: `startup with ${sessions.toLocaleString('en')} current sessions, no legacy: ready`,
      unit: 'ms',
      value: readyMs,
      baseline: { name: 'empty data dir', value: median(emptyStarts) },
      ratio: readyMs / median(emptyStarts),
      target: 'ready in <= 1000 ms',
      met: readyMs <= 1000,
    });

    // A restart with nothing changed: `npm start` builds nothing and serves.
    const restartDir = await tempDir('restart');
    dirs.push(restartDir);
    const restarts: number[] = [];
    for (let run = 0; run < 3; run++) restarts.push(await npmStartReadyInMs(restartDir));
    const restartMs = median(restarts);
    rows.push({
      scenario: '`npm start` with nothing changed (restart): ready',
      unit: 'ms',
      value: restartMs,
      extra: `runs ${restarts.map((ms) => ms.toFixed(0)).join(' / ')} ms`,
      target: 'ready in <= 2000 ms',
      met: restartMs <= 2000,
    });
  } finally {
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
  }
  return rows;
}
