/**
 * `npm run soak -- [--minutes N] [--users N] [--connections N] [--quick]`: starts the built
 * service as a real process (production mode, temp data directory, 127.0.0.1, rate limits
 * raised so only the code is measured) and drives a mixed, checked workload of many users
 * against it for N minutes (default 10; --quick: 1). Every minute it prints one line:
 * requests, req/s, p50/p99, errors, and the server's RSS, JS heap, open fds and data
 * directory size; at the end a table, the last minute against the first ("flat within 10%"
 * for RSS and fds: reported as met or missed, never a failure), and tests/soak/results.json.
 *
 * Exit code 1 when the workload saw a 5xx, a wrong answer (content that differs from what was
 * stored, another user's data answered) or the server died; 2 on bad arguments; 0 otherwise.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SERVICE_ENTRY, serviceArgs, start, type Running } from '../bench/processes';
import { BENCH_SECRET, measuredServiceEnv } from '../bench/service';
import { makeTempDir } from '../helpers/test-app';
import { Client } from './client';
import { soakOptions, USAGE, type SoakOptions } from './options';
import { alive, directorySize, Probe, reportFlags, ServerGone, type Sample } from './probe';
import {
  describeErrors,
  flatness,
  flatnessLines,
  latencyFigures,
  machine,
  median,
  minuteLine,
  minuteTable,
  operationTable,
  operationsOf,
  writeResults,
  type Minute,
  type SoakResults,
} from './report';
import { errorCount, failingCount, Stats } from './stats';
import { Workload } from './workload';

const MINUTE_MS = 60_000;
const SAMPLE_EVERY_MS = 5_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** How long the clients get to finish their last operation once the time is up. */
const DRAIN_MS = 60_000;
const SIGTERM_GRACE_MS = 15_000;
const RESULTS = path.join(__dirname, 'results.json');
const MAX_PROBLEMS_SHOWN = 15;

const say = (line: string) => process.stderr.write(`soak: ${line}\n`);

async function startServer(root: string): Promise<{ running: Running; dataDir: string; reportDir: string; errors: string[] }> {
  const dataDir = path.join(root, 'data');
  const reportDir = path.join(root, 'reports');
  await fs.mkdir(reportDir);
  const errors: string[] = [];
  const running = await start({
    args: [...reportFlags(reportDir), ...serviceArgs()],
    env: measuredServiceEnv(dataDir),
    // Error lines the service logs, for the report; the rest of its log is drained.
    keep: (line) => {
      if (line.level === 'error' && errors.length < 20) errors.push(JSON.stringify(line).slice(0, 500));
      return false;
    },
    timeoutMs: 60_000,
  });
  return { running, dataDir, reportDir, errors };
}

async function stopServer(running: Running): Promise<number | null> {
  if (!alive(running.pid)) {
    await running.stop();
    return null;
  }
  const sent = performance.now();
  process.kill(running.pid, 'SIGTERM');
  let stoppedMs: number | null = null;
  while (performance.now() - sent < SIGTERM_GRACE_MS) {
    if (!alive(running.pid)) {
      stoppedMs = Math.round(performance.now() - sent);
      break;
    }
    await sleep(20);
  }
  await running.stop(); // SIGKILL if SIGTERM was not enough
  return stoppedMs;
}

async function soak(options: SoakOptions, root: string): Promise<boolean> {
  const { running, dataDir, reportDir, errors: serverErrors } = await startServer(root);
  // Ctrl-C (or npm passing on a SIGTERM): kill the server, wait until it is gone (so nothing
  // writes into the temp dir any more), remove the temp dir, exit. Repeated signals (a wrapper
  // passing one on) are ignored meanwhile rather than cutting the cleanup short.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: killing the server and removing ${root}`);
    void running
      .stop()
      .then(() => fs.rm(root, { recursive: true, force: true, maxRetries: 5 }))
      .finally(() => process.exit(130));
  };
  try {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    say(`service pid ${running.pid} on ${running.url}, data in ${dataDir}`);
    say(`${options.minutes} minute(s), ${options.users} users, ${options.connections} connections`);

    const stats = new Stats();
    const client = new Client(new URL(running.url), options.connections, REQUEST_TIMEOUT_MS);
    const workload = new Workload(client, stats, {
      users: options.users,
      connections: options.connections,
      secret: BENCH_SECRET,
      tokenSeconds: options.minutes * 60 + 3600,
      maxRequests: options.minutes * 60 * 20_000,
      // A dead server refuses every request at once: stop rather than spin on refusals.
      onNoAnswer: () => {
        if (!alive(running.pid)) workload.stop();
      },
    });
    const probe = new Probe(running.pid, reportDir);

    const seedStarted = performance.now();
    await workload.seed();
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    stats.rotate(); // seeding is not a minute of the soak (its errors still count in the totals)
    const [beforeSample, beforeHeap] = await Promise.all([probe.sample(), probe.heap()]);
    say(
      `seeded one session for each of ${options.users} users in ${seedSeconds.toFixed(1)} s; ` +
        `before the workload: RSS ${(beforeSample.rss / 2 ** 20).toFixed(1)} MiB, fds ${beforeSample.fds}, ` +
        `heap ${beforeHeap ? (beforeHeap.usedBytes / 2 ** 20).toFixed(1) : 'n/a'} MiB`,
    );

    let clientError: unknown;
    const started = performance.now();
    const clients = workload.run().catch((error: unknown) => {
      clientError = error;
    });
    const minutes: Minute[] = [];
    let died: string | undefined;
    for (let minute = 1; minute <= options.minutes && !died && clientError === undefined; minute++) {
      const peakReset = await probe.resetPeak();
      const end = started + minute * MINUTE_MS;
      const samples: Sample[] = [];
      try {
        while (performance.now() < end - 50) {
          await sleep(Math.min(SAMPLE_EVERY_MS, end - performance.now()));
          samples.push(await probe.sample());
        }
        if (samples.length === 0) samples.push(await probe.sample());
        const bucket = stats.rotate();
        const [heap, data, peak] = await Promise.all([probe.heap(), directorySize(dataDir), probe.peakRss()]);
        const rssSamples = samples.map((s) => s.rss);
        const figures: Minute = {
          minute,
          ...bucket.counts,
          requestsPerSecond: bucket.counts.requests / (MINUTE_MS / 1000),
          ...latencyFigures(bucket),
          rssBytes: median(rssSamples),
          rssPeakBytes: peakReset ? peak : Math.max(...rssSamples),
          heapUsedBytes: heap?.usedBytes ?? null,
          heapTotalBytes: heap?.totalBytes ?? null,
          handles: heap?.handles ?? null,
          fds: median(samples.map((s) => s.fds)),
          fdsMax: Math.max(...samples.map((s) => s.fds)),
          dataBytes: data.bytes,
          dataEntries: data.entries,
        };
        minutes.push(figures);
        process.stdout.write(`${minuteLine(figures)}\n`);
      } catch (error) {
        if (!(error instanceof ServerGone) && alive(running.pid)) throw error;
        died = `the server process exited during minute ${minute}`;
      }
    }

    workload.stop();
    const drained = await Promise.race([clients.then(() => true), sleep(DRAIN_MS).then(() => false)]);
    if (!drained) say(`the clients did not finish within ${DRAIN_MS / 1000} s of the end`);
    client.close();
    if (!died && !alive(running.pid)) died = 'the server process exited at the end of the run';
    if (died) {
      const note = await probe.deathNote();
      died += note ? ` (${note})` : '';
    }
    const stoppedOnSigtermMs = died ? null : await stopServer(running);
    if (died) await running.stop();

    const flat = flatness(minutes);
    const failing = failingCount(stats.total) + (died ? 1 : 0) + (clientError === undefined ? 0 : 1);
    const results: SoakResults = {
      date: new Date().toISOString(),
      machine: machine(),
      options,
      seed: { sessions: options.users, seconds: Math.round(seedSeconds * 10) / 10 },
      before: { rssBytes: beforeSample.rss, fds: beforeSample.fds, heapUsedBytes: beforeHeap?.usedBytes ?? null },
      minutes,
      flatness: flat ?? null,
      totals: stats.total,
      operations: operationsOf(stats),
      problems: [...stats.problems.entries()].map(([problem, { count, samples }]) => ({ problem, count, samples })),
      server: { died: died ?? null, stoppedOnSigtermMs },
      passed: failing === 0,
    };
    await writeResults(results, RESULTS);

    const out: string[] = ['', minuteTable(minutes), '', operationTable(stats.byOperation), ''];
    out.push(...flatnessLines(flat));
    const total = stats.total;
    out.push(
      `requests: ${total.requests} (seeding included), refusals as expected ${total.refusals}, ` +
        `errors ${errorCount(total)}${errorCount(total) ? `: ${describeErrors(total)}` : ''}`,
    );
    const problems = [...stats.problems.entries()].sort((a, b) => b[1].count - a[1].count);
    for (const [problem, { count, samples }] of problems.slice(0, MAX_PROBLEMS_SHOWN)) {
      out.push(`  ${count} x ${problem}`, ...samples.map((s) => `      e.g. ${s}`));
    }
    if (problems.length > MAX_PROBLEMS_SHOWN) out.push(`  ... and ${problems.length - MAX_PROBLEMS_SHOWN} more kinds (all in the JSON)`);
    if (serverErrors.length) out.push('server error log lines:', ...serverErrors.map((l) => `  ${l}`));
    if (clientError !== undefined) out.push(`soak client failed: ${clientError instanceof Error ? (clientError.stack ?? clientError.message) : String(clientError)}`);
    out.push(
      died
        ? `server: ${died}`
        : stoppedOnSigtermMs === null
          ? `server: did not stop within ${SIGTERM_GRACE_MS / 1000} s of SIGTERM; killed`
          : `server: stopped ${stoppedOnSigtermMs} ms after SIGTERM`,
    );
    out.push(`results: ${path.relative(process.cwd(), RESULTS)}`);
    out.push(failing === 0 ? 'soak: passed' : 'soak: FAILED (5xx, wrong answers, another user\'s data, or the server died)');
    process.stdout.write(`${out.join('\n')}\n`);
    return failing === 0;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await running.stop();
  }
}

async function main(): Promise<void> {
  let options: SoakOptions;
  try {
    options = soakOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`soak: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    process.exit(2);
  }
  if (!existsSync(SERVICE_ENTRY)) {
    process.stderr.write(`soak: ${SERVICE_ENTRY} is missing; run npm run build first\n`);
    process.exit(2);
  }
  const root = await makeTempDir('sv-soak-');
  const passed = await soak(options, root).finally(() => fs.rm(root, { recursive: true, force: true }));
  process.exit(passed ? 0 : 1);
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
