#!/usr/bin/env node
/**
 * `npm run build` (and `npm start`, `npm test`, `npm run bench` before they run): compiles
 * src/ to dist/ and copies the PostgreSQL migrations beside the compiled code and Redoc's
 * bundle (the /docs page's script) into dist/vendor.
 *
 * A restart with no change must not pay for a compile, nor even for loading TypeScript
 * (about 2 s on a busy machine): when dist/.build-stamp is newer than every file and
 * directory under src/ and every file the output depends on (the tsconfigs, the lockfile,
 * this script), nothing is done. Otherwise `tsc -b` compiles, itself incrementally (what
 * dist/.tsbuildinfo recorded of the last build), and the stamp is dated to the moment the
 * build started, so a file saved during the build counts as changed next time. Deleting
 * dist/ makes the next build a full one.
 *
 * Usage: node scripts/build.mjs   (exit 1 on a compile error, printed as tsc prints it)
 */
import { cpSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const at = (...parts) => path.join(root, ...parts);
const STAMP = at('dist', '.build-stamp');
const started = new Date();

/** The newest mtime under `file` (a directory's own mtime included: it changes when an entry is removed or renamed). */
function newest(file) {
  const stat = statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(file).map((name) => newest(path.join(file, name))));
}

function upToDate() {
  let built;
  try {
    built = statSync(STAMP).mtimeMs;
  } catch {
    return false;
  }
  const inputs = [at('src'), at('tsconfig.json'), at('config', 'tsconfig.build.json'), at('package-lock.json'), at('scripts', 'build.mjs')];
  return inputs.every((input) => newest(input) < built);
}

if (!upToDate()) {
  const { default: ts } = await import('typescript');
  const host = ts.createSolutionBuilderHost(ts.sys, undefined, ts.createDiagnosticReporter(ts.sys, process.stdout.isTTY === true));
  const status = ts.createSolutionBuilder(host, [at('config', 'tsconfig.build.json')], {}).build();
  if (status !== ts.ExitStatus.Success) process.exit(1);
  // The SQL files are read at run time from beside the compiled migration runner.
  cpSync(at('src', 'storage', 'postgres', 'migrations'), at('dist', 'storage', 'postgres', 'migrations'), { recursive: true });
  // The API reference page's script comes from redoc, a dev dependency: copied here, it is
  // all of redoc the runtime image needs (one file, not the package's 115 dependencies).
  cpSync(createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js'), at('dist', 'vendor', 'redoc.standalone.js'));
  writeFileSync(STAMP, '');
  utimesSync(STAMP, started, started);
}
