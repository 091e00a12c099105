/**
 * The served `/openapi.json` against Redocly's `recommended` ruleset, by the real CLI
 * (`@redocly/cli`, a dev dependency): no error and no warning. The CLI runs offline: no
 * telemetry (REDOCLY_TELEMETRY=off), no update check (REDOCLY_SUPPRESS_UPDATE_NOTICE), no
 * config file (it runs in an empty directory, with `--extends recommended`), and the
 * document has no external reference to fetch.
 */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { makeTempDir, startTestApp } from '../helpers/test-app';

const run = promisify(execFile);
const REDOCLY = require.resolve('@redocly/cli/bin/cli.js');

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: Array<{ ruleId: string; severity: string; message: string; location?: Array<{ pointer?: string }> }>;
}

it("passes Redocly's recommended rules with no error and no warning", async () => {
  const t = await startTestApp();
  const dir = await makeTempDir('session-vault-openapi-lint-');
  try {
    const served = await request(t.app).get('/openapi.json');
    expect(served.status).toBe(200);
    const file = path.join(dir, 'openapi.json');
    await writeFile(file, served.text);
    // Exit code 1 on errors: read the report either way.
    const { stdout } = await run(process.execPath, [REDOCLY, 'lint', '--extends', 'recommended', '--lint-config', 'off', '--format', 'json', file], {
      cwd: dir,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
      timeout: 60_000,
    }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
    const report = JSON.parse(stdout) as LintReport;
    const problems = report.problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? '?'}`);
    expect(problems).toEqual([]);
    expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
  } finally {
    await rm(dir, { recursive: true, force: true });
    await t.close();
  }
}, 90_000);
