/**
 * `npm run check-data -- [--repair] [--json] [--data-dir <path>]`: checks a stopped service's
 * data directory, and with --repair fixes what is safe and quarantines the rest.
 *
 * Exit codes: 0 nothing needs attention (litter and other info alone are fine); 1 problems
 * found and not all repaired, or the directory is missing or in use; 2 a usage error.
 * It reads DATA_DIR (default `./data`) and nothing else of the service's configuration.
 */
import path from 'node:path';
import { loadEnvFile } from '../env-file';
import { FILE_OVERHEAD_BYTES } from '../sessions/ports';
import { checkData, type DataCheckReport, type Finding } from '../storage/fs/data-check';
import { DataDirectoryBusy, DataLockUnusable, lockDataDirectory, type DataLock } from '../storage/fs/data-lock';
import { fs } from '../storage/fs/durable-fs';
import { DataPaths } from '../storage/fs/paths';

const USAGE = 'usage: npm run check-data -- [--repair] [--json] [--data-dir <path>]   (DATA_DIR, default ./data)';

interface Options {
  repair: boolean;
  json: boolean;
  dataDir: string;
}

function fail(message: string, code: 1 | 2): never {
  process.stderr.write(`check-data: ${message}\n`);
  process.exit(code);
}

function parseArgs(args: string[], env: NodeJS.ProcessEnv): Options {
  let repair = false;
  let json = false;
  let dataDir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--repair') repair = true;
    else if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg === '--data-dir' || arg.startsWith('--data-dir=')) {
      const value = arg === '--data-dir' ? args[++i] : arg.slice('--data-dir='.length);
      if (value === undefined || value.trim() === '' || value.startsWith('--')) fail(`--data-dir takes a path\n${USAGE}`, 2);
      dataDir = value;
    } else {
      fail(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`, 2);
    }
  }
  if (dataDir === undefined) {
    // As the service reads it: unset means ./data, set but blank is a mistake, not a default.
    if (env.DATA_DIR !== undefined && env.DATA_DIR.trim() === '') fail(`DATA_DIR is set but empty\n${USAGE}`, 2);
    dataDir = env.DATA_DIR?.trim() ?? './data';
  }
  return { repair, json, dataDir };
}

/** The data directory's real path; never created here (a typo must not look like an empty, healthy tree). */
async function existingDataDirectory(dataDir: string): Promise<string> {
  const resolved = path.resolve(dataDir);
  let root: string;
  try {
    root = await fs.realpath(resolved);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(`${resolved} does not exist (set DATA_DIR or --data-dir to the service's data directory)`, 1);
    fail(`${resolved} cannot be opened (${code ?? String(error)})`, 1);
  }
  if (!(await fs.stat(root)).isDirectory()) fail(`${resolved} is not a directory`, 1);
  return root;
}

const LABELS: Record<Finding['outcome'], string> = {
  info: 'info',
  pending: 'found',
  repaired: 'fixed',
  left: 'left',
  failed: 'FAILED',
};

function findingLine(f: Finding): string {
  const head = `${LABELS[f.outcome].padEnd(6)} ${f.kind.padEnd(17)} ${f.path}: ${f.message}`;
  switch (f.outcome) {
    case 'info':
      return f.action ? `${head}; ${f.action}` : head;
    case 'pending':
      return `${head} -> --repair would ${f.action}`;
    case 'repaired':
      return `${head} -> repaired: ${f.action}`;
    case 'left':
      return `${head} -> ${f.action}`;
    case 'failed':
      return `${head} -> could not ${f.action} (${f.error ?? 'unknown error'})`;
  }
}

function printReport(report: DataCheckReport): void {
  const lines: string[] = [];
  const mode = report.mode === 'repair' ? 'check and repair' : 'check only, nothing changed';
  lines.push(`check-data: ${report.dataDir} (${mode})`);
  for (const f of report.findings) lines.push(findingLine(f));
  // A check-only run reports usage as --repair will leave it (what the service loads next).
  const predicted = report.mode === 'check' && !report.clean ? ', once --repair has run' : '';
  for (const u of report.usage) {
    const claims = u.listedBytes === u.bytes ? '' : ` (the file lists claim ${u.listedBytes})`;
    const partial = u.complete ? '' : ' (incomplete: part of it could not be read)';
    lines.push(`usage  ${u.path} (user ${u.userId})${predicted}: ${u.sessions} session(s), ${u.bytes} bytes stored${claims}${partial}; /me reports ${u.charged} bytes (${u.files} file(s) at ${FILE_OVERHEAD_BYTES} bytes of overhead each) after a restart`);
  }
  const s = report.summary;
  const counts =
    report.mode === 'repair'
      ? `${s.problems} problem(s): ${s.repaired} repaired, ${s.left} left, ${s.failed} failed`
      : `${s.problems} problem(s): ${s.pending} --repair would fix, ${s.left} it leaves`;
  const moved = report.quarantine ? `; ${s.quarantined} entr${s.quarantined === 1 ? 'y' : 'ies'} moved into ${report.quarantine}/ for a person to look at` : '';
  const verdict = report.clean ? 'nothing needs attention' : 'needs attention';
  lines.push(`summary: ${counts}; ${s.info} info${moved}; ${verdict}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  // The same `.env` the service reads, so DATA_DIR names the directory the service uses.
  const envFile = loadEnvFile();
  if ('error' in envFile) fail(envFile.error, 1);
  const options = parseArgs(process.argv.slice(2), process.env);
  const root = await existingDataDirectory(options.dataDir);
  // Whatever a run creates or rewrites (the lock file, a file list) must stay the service's:
  // root repairing a directory a non-root service owns would lock that service out of it.
  const owner = (await fs.stat(root)).uid;
  if (process.getuid !== undefined && process.getuid() !== owner) {
    fail(`${root} belongs to uid ${owner}; run check-data as that user (e.g. sudo -u '#${owner}' ...), not as uid ${process.getuid()}`, 1);
  }
  let lock: DataLock;
  try {
    lock = await lockDataDirectory(root);
  } catch (error) {
    if (error instanceof DataDirectoryBusy || error instanceof DataLockUnusable) fail(error.message, 1);
    fail(`cannot lock ${root} (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 1);
  }
  let report: DataCheckReport;
  try {
    report = await checkData(new DataPaths(root), { repair: options.repair, now: new Date() });
  } finally {
    await lock.release();
  }
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printReport(report);
  process.exitCode = report.clean ? 0 : 1;
}

main().catch((error: unknown) => {
  fail(`stopped: ${error instanceof Error ? error.message : String(error)}`, 1);
});
