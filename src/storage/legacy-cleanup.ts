/**
 * Deletes session data of earlier layouts, before the server listens.
 *
 * Earlier versions kept sessions shared by everyone (`sessions/<session>/` with the
 * session's files directly in it) or under an old per-user base (`<DATA_DIR>/<user>/...`).
 * Rules, each a safety property:
 * - Nothing is followed: a symbolic link is reported and left where it is, and a link met
 *   inside a tree being deleted is unlinked, never entered.
 * - Only paths built from `DATA_DIR` and names read from its directories are touched.
 * - Current data is never deleted: a user directory holds only directories, a legacy
 *   shared session holds regular files directly.
 * - Anything it cannot classify is left alone with a warning.
 * A second start finds nothing to delete and reads only one directory level per user.
 * Each directory is read once: what classifies it is also what deletes it, so the cost per
 * legacy session is what `rm -rf` spends on it plus one lstat per file (for the byte count).
 */
import type { Dirent } from 'node:fs';
import path from 'node:path';
import { fs } from './durable-fs';
import { forEachLimited } from './for-each-limited';
import type { DataPaths } from './paths';

export type CleanupMode = 'delete' | 'dry-run' | 'off';

export interface CleanupReport {
  mode: CleanupMode;
  /** Legacy trees found (and, in delete mode, removed), relative to DATA_DIR. */
  removed: string[];
  count: number;
  bytes: number;
  warnings: string[];
  durationMs: number;
}

/** Our own top-level entries: the current layout, staging, the dev secret. */
const CURRENT_TOP_LEVEL = new Set(['sessions', '.staging', '.dev-jwt-secret']);
/** Ids the old layouts generated: long random tokens, never a name like `backups` or `2024`. */
const LEGACY_SESSION_NAME = /^[A-Za-z0-9_-]{16,128}$/;
/** As many as libuv runs at once: more only queue, and contend for the same parent directory. */
const TREE_CONCURRENCY = 4;

async function readEntries(dir: string): Promise<Dirent[]> {
  return fs.readdir(dir, { withFileTypes: true });
}

/**
 * Sums sizes and, when `remove`, deletes in the same pass, given the entries of `dir` already
 * read; links are unlinked, not entered.
 */
async function walkTree(dir: string, entries: Dirent[], remove: boolean): Promise<number> {
  let bytes = 0;
  for (const entry of entries) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      bytes += await walkTree(child, await readEntries(child), remove);
    } else {
      if (entry.isFile()) bytes += (await fs.lstat(child)).size;
      if (remove) await fs.unlink(child);
    }
  }
  if (remove) await fs.rmdir(dir);
  return bytes;
}

/** A directory of an old per-session layout: a plausible id holding regular files directly. */
async function isLegacySessionDir(dir: string, name: string): Promise<boolean> {
  if (!LEGACY_SESSION_NAME.test(name)) return false;
  return (await readEntries(dir)).some((e) => e.isFile());
}

/** `<DATA_DIR>/<user>/` of the old per-user base: only legacy session directories in it. */
async function isLegacyUserBase(dir: string): Promise<boolean> {
  const entries = await readEntries(dir);
  if (entries.length === 0) return false;
  for (const entry of entries) {
    if (!entry.isDirectory()) return false;
    const child = path.join(dir, entry.name);
    if (entry.name === 'sessions') {
      if (!(await isLegacyUserBase(child))) return false;
    } else if (!(await isLegacySessionDir(child, entry.name))) {
      return false;
    }
  }
  return true;
}

export async function cleanLegacyData(paths: DataPaths, mode: CleanupMode): Promise<CleanupReport> {
  const started = performance.now();
  const report: CleanupReport = { mode, removed: [], count: 0, bytes: 0, warnings: [], durationMs: 0 };
  if (mode === 'off') return report;
  const remove = mode === 'delete';
  const removeTree = async (dir: string, entries: Dirent[]) => {
    // Awaited first, then added: `report.bytes += await ...` would add to a stale total.
    const bytes = await walkTree(dir, entries, remove);
    report.bytes += bytes;
    report.removed.push(path.relative(paths.root, dir));
  };
  const legacyBases: string[] = [];

  for (const entry of await readEntries(paths.root)) {
    if (CURRENT_TOP_LEVEL.has(entry.name) || entry.name.startsWith('.')) continue;
    const full = path.join(paths.root, entry.name);
    if (entry.isSymbolicLink()) report.warnings.push(`left symbolic link ${entry.name} (never followed)`);
    else if (entry.isDirectory() && (await isLegacyUserBase(full))) legacyBases.push(full);
    else report.warnings.push(`left unknown entry ${entry.name}`);
  }

  const userLevel = await readEntries(paths.sessionsRoot);
  await forEachLimited(userLevel, TREE_CONCURRENCY, async (entry) => {
    const full = path.join(paths.sessionsRoot, entry.name);
    if (entry.isSymbolicLink()) {
      report.warnings.push(`left symbolic link sessions/${entry.name} (never followed)`);
    } else if (!entry.isDirectory()) {
      report.warnings.push(`left unknown entry sessions/${entry.name}`);
    } else {
      const entries = await readEntries(full);
      if (entries.some((e) => e.isFile())) await removeTree(full, entries);
    }
  });
  for (const dir of legacyBases) await removeTree(dir, await readEntries(dir));
  report.count = report.removed.length;
  report.removed.sort();
  report.durationMs = Math.round(performance.now() - started);
  return report;
}
