/**
 * `npm run bench [-- --quick] [-- --only http,files,startup,bounds]`: runs the service and its
 * baselines as real processes on temp data directories, prints a markdown table and writes
 * tests/bench/results.json. Targets are ratios against baselines measured in the same run;
 * a missed target is reported, not an error: the exit code is non-zero only when the
 * suite itself breaks.
 */
import path from 'node:path';
import { benchOptions } from './options';
import { markdown, newReport, writeJson, type Row } from './report';
import { boundScenarios } from './scenarios/bounds';
import { fileScenarios } from './scenarios/files';
import { httpScenarios } from './scenarios/http';
import { startupScenarios } from './scenarios/startup';

const GROUPS: Record<string, (options: ReturnType<typeof benchOptions>) => Promise<Row[]>> = {
  http: httpScenarios,
  files: fileScenarios,
  startup: startupScenarios,
  bounds: boundScenarios,
};

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const options = benchOptions(argv);
  const onlyAt = argv.indexOf('--only');
  const groups = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : Object.keys(GROUPS);
  const report = newReport(options.quick);
  for (const name of groups) {
    const group = GROUPS[name];
    if (!group) throw new Error(`unknown scenario group ${name}; one of ${Object.keys(GROUPS).join(', ')}`);
    process.stderr.write(`bench: ${name}...\n`);
    const started = performance.now();
    report.rows.push(...(await group(options)));
    process.stderr.write(`bench: ${name} done in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  }
  process.stdout.write(`${markdown(report)}\n`);
  await writeJson(report, path.join(__dirname, 'results.json'));
  const missed = report.rows.filter((r) => !r.met).length;
  process.stderr.write(`bench: ${report.rows.length} rows, ${missed} target(s) missed; results in tests/bench/results.json\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
