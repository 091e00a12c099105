/**
 * `npm run bench [-- --quick] [-- --only http,metrics,files,startup,bounds,postgres,replicas] [-- --backend postgres] [-- --replicas N] [-- --profile <scenario> | --until-stable [N]] [-- --no-pin]`: runs the service
 * and its baselines as real processes on temp data directories, prints a markdown table and
 * writes tests/bench/results.json. Targets are ratios against baselines measured in the same
 * run; a missed target is reported, not an error: the exit code is non-zero only when the
 * suite itself breaks.
 *
 * Groups (all of them unless `--only` names some; `--backend postgres` is the same as
 * `--only postgres,replicas`, and `--backend fs` as `--only http,metrics,files,startup,bounds`):
 * - http, metrics, files, startup, bounds: the service on STORAGE_BACKEND=fs (metrics: the GET
 *   with METRICS=on, and with tracing on, each against both off);
 * - postgres: the service on STORAGE_BACKEND=postgres with BLOB_STORE=s3 (scenarios/postgres.ts):
 *   GET, PATCH with If-Match and message append against bare Express + pg on the same database
 *   (>= 60%; each row's extra: the same bare server calling the service's own PgBackend, measured
 *   in the same turns; GET's also the bare handler without the transaction and set_config, what
 *   the RLS transaction shape costs), 1 MiB upload (>= 50%) and download (>= 60%) against a bare
 *   node:http pipe to the same s3rver, and one streamed 200 MB upload (20 MB in --quick) against
 *   the pipe (>= 60%, service RSS growth <= 64 MB). `--backend` only picks groups: the fs groups
 *   stay as they are, and this group is the one place the postgres figures come from. It needs the machine's PostgreSQL (127.0.0.1:5432,
 *   trust auth, superuser postgres; TEST_PGHOST, TEST_PGPORT and TEST_PGUSER as for the tests),
 *   makes a database of its own and drops it at the end, also on failure or Ctrl-C. `--quick`
 *   runs it too (one 1-second run per side, 2 s for files, no warm-up: 30-45 s).
 * - replicas: 1 replica against N (`--replicas N`, default 2) of the service on one database,
 *   one s3rver and the machine's Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379),
 *   side by side in the same turns (scenarios/replicas.ts); reported, with no target.
 *
 * `--profile <scenario>` (part of a row's name, any case) profiles the service under test in
 * every measured pair (profiler.ts) and prints, after the table, the top modules by self time of
 * the rows that match; their .cpuprofile files stay in tests/bench/profiles/.
 *
 * `--until-stable [N]` runs the chosen groups again and again (at most N times, 4 by default)
 * until two consecutive runs agree within STABLE_POINTS on every row: a ratio in percentage
 * points, any other figure in percent of the run before. The table is the last run's, each row
 * with how far it moved; results.json holds every run.
 *
 * With two cores or more, the load generator (this process) runs on core 0 and the processes it
 * measures on the others, every group but replicas (cpu-placement.ts); `--no-pin` leaves them
 * all to the scheduler. The table's first line says which.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { describePlacement, place, placementFor } from './cpu-placement';
import { benchOptions } from './options';
import { profileServicesInto } from './profiler';
import { profileTable, summarizeFile } from './profile-summary';
import { startGroup } from './progress';
import { STABLE_POINTS, markdown, newReport, runsAgree, writeJson, type Row } from './report';
import { boundScenarios } from './scenarios/bounds';
import { fileScenarios } from './scenarios/files';
import { httpScenarios } from './scenarios/http';
import { metricsScenarios } from './scenarios/metrics';
import { postgresScenarios } from './scenarios/postgres';
import { replicaScenarios } from './scenarios/replicas';
import { startupScenarios } from './scenarios/startup';
import { closeOpenScopes } from './service';

const GROUPS: Record<string, (options: ReturnType<typeof benchOptions>) => Promise<Row[]>> = {
  http: httpScenarios,
  metrics: metricsScenarios,
  files: fileScenarios,
  startup: startupScenarios,
  bounds: boundScenarios,
  postgres: postgresScenarios,
  replicas: replicaScenarios,
};

/** Groups whose processes must spread over every core: they run with no CPU placement. */
const UNPLACED = new Set(['replicas']);

/** `--backend <name>`: the groups that measure the service on that storage backend. */
const BACKENDS: Record<string, string[]> = {
  fs: ['http', 'metrics', 'files', 'startup', 'bounds'],
  postgres: ['postgres', 'replicas'],
};

// Stopped from outside, a group's `finally` never runs: what its scenarioScope holds (processes,
// a database to drop, directories) is cleaned up here instead.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, cleaning up\n`);
    closeOpenScopes().then(
      () => process.exit(130),
      (error: unknown) => {
        process.stderr.write(`bench: cleaning up failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(130);
      },
    );
  });
}

/** `--until-stable [N]`: at most N runs (default 4), at least 2. */
function untilStableRuns(given: string | undefined): number {
  if (given === undefined || given.startsWith('--')) return 4;
  const runs = Number(given);
  if (!Number.isInteger(runs) || runs < 2 || runs > 10) throw new Error(`--until-stable takes a whole number of runs from 2 to 10, not ${given}`);
  return runs;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const options = benchOptions(argv);
  const onlyAt = argv.indexOf('--only');
  const backendAt = argv.indexOf('--backend');
  const backend = backendAt >= 0 ? argv[backendAt + 1] : undefined;
  if (backend !== undefined && !(backend in BACKENDS)) throw new Error(`unknown backend ${backend}; one of ${Object.keys(BACKENDS).join(', ')}`);
  if (onlyAt >= 0 && backend !== undefined) throw new Error('--only and --backend both pick groups: give one of them');
  const groups = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : backend !== undefined ? BACKENDS[backend]! : Object.keys(GROUPS);
  const report = newReport(options.quick);
  const profileAt = argv.indexOf('--profile');
  const profiled = profileAt >= 0 ? argv[profileAt + 1] : undefined;
  if (profileAt >= 0 && (profiled === undefined || profiled.startsWith('--'))) throw new Error('--profile takes part of a scenario name');
  const profileDir = path.join(__dirname, 'profiles', new Date().toISOString().replace(/[:.]/g, '-'));
  if (profiled !== undefined) {
    await mkdir(profileDir, { recursive: true });
    profileServicesInto(profileDir);
  }
  for (const name of groups) if (!GROUPS[name]) throw new Error(`unknown scenario group ${name}; one of ${Object.keys(GROUPS).join(', ')}`);
  const stableAt = argv.indexOf('--until-stable');
  if (stableAt >= 0 && profiled !== undefined) throw new Error('--profile and --until-stable: give one of them (a profiled run is not compared)');
  const maxRuns = stableAt < 0 ? 1 : untilStableRuns(argv[stableAt + 1]);
  const placement = argv.includes('--no-pin') ? undefined : placementFor(os.cpus().length);
  report.placement = groups.some((name) => UNPLACED.has(name))
    ? `${describePlacement(placement)} (${[...UNPLACED].join(', ')}: none)`
    : describePlacement(placement);
  const runs: Row[][] = [];
  for (let run = 1; run <= maxRuns; run++) {
    const rows: Row[] = [];
    for (const name of groups) {
      const group = GROUPS[name]!;
      process.stderr.write(`bench: ${name}${maxRuns > 1 ? ` (run ${run} of at most ${maxRuns})` : ''}...\n`);
      startGroup(name);
      place(UNPLACED.has(name) ? undefined : placement);
      const started = performance.now();
      rows.push(...(await group(options)));
      process.stderr.write(`bench: ${name} done in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
    }
    runs.push(rows);
    if (runs.length >= 2) {
      const agreement = runsAgree(runs[runs.length - 2]!, rows, STABLE_POINTS);
      report.stable = agreement.agree;
      const worst = agreement.rows.reduce((a, b) => (b.points > a.points ? b : a));
      process.stderr.write(`bench: runs ${run - 1} and ${run} ${agreement.agree ? 'agree' : 'differ'}; largest move ${worst.points.toFixed(0)} points (${worst.scenario})\n`);
      if (agreement.agree) break;
    }
  }
  report.rows = runs[runs.length - 1]!;
  if (runs.length > 1) report.runs = runs;
  process.stdout.write(`${markdown(report)}\n`);
  if (profiled !== undefined) await printProfiles(report.rows, profiled);
  await writeJson(report, path.join(__dirname, 'results.json'));
  const missed = report.rows.filter((r) => !r.met).length;
  process.stderr.write(`bench: ${report.rows.length} rows, ${missed} target(s) missed; results in tests/bench/results.json\n`);
}

/** The top modules of each profiled row whose scenario contains `text`; the other rows' profiles are removed. */
async function printProfiles(rows: Row[], text: string): Promise<void> {
  const matches = (row: Row) => row.scenario.toLowerCase().includes(text.toLowerCase());
  const kept = rows.filter((row) => row.profile !== undefined && matches(row));
  await Promise.all(rows.filter((row) => row.profile !== undefined && !matches(row)).map((row) => rm(row.profile!, { force: true })));
  if (kept.length === 0) {
    const profilable = rows.filter((row) => row.profile !== undefined).map((row) => row.scenario);
    throw new Error(`--profile ${text}: no profiled scenario matches; these were profiled:\n${profilable.join('\n')}`);
  }
  for (const row of kept) {
    const summary = await summarizeFile(row.profile!);
    process.stdout.write(
      `\nCPU profile of the service during "${row.scenario}" (measured turns, ${summary.busyMs.toFixed(0)} ms busy; self time by module, idle left out):\n\n` +
        `${profileTable(summary, 10)}\n\nfull profile: ${path.relative(process.cwd(), row.profile!)} (open it in Chrome DevTools or VS Code)\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
