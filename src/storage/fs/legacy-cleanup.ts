/**
 * Deletes the shared sessions of an earlier layout, before the server listens.
 *
 * Earlier versions kept sessions shared by everyone: `sessions/<session>/` with the
 * session's files directly in it. The rules, each a safety property, lean towards keeping:
 * - Only `sessions/<name>/` is ever deleted, and only when it positively matches that shape:
 *   a name like an old session id, regular files directly inside (OS and editor litter does
 *   not count), nothing inside named like a current session id, and subdirectories (a
 *   `files/` folder) that hold only files, on the same filesystem. A current user directory
 *   is recognised by its session directories, whatever else sits beside them; one that holds
 *   nothing but litter, or nothing at all, is not a legacy session either; a deeper tree (a
 *   backup copy of users) or a mount point is not one.
 * - Nothing outside `sessions/` is deleted: a top-level entry that is not ours (an old
 *   per-user base, a backup copy, `lost+found`) is left where it is, with a warning.
 * - Nothing is followed: a symbolic link is reported and left where it is, and a link met
 *   inside a tree being deleted is unlinked, never entered.
 * - A directory it cannot read (EACCES on a volume's `lost+found`) is left alone with a
 *   warning; it never stops startup.
 * A second start finds nothing to delete and reads only one directory level per user.
 * Each directory is read once: what classifies it is also what deletes it, so the cost per
 * legacy session is what `rm -rf` spends on it plus one lstat per file (for the byte count).
 */
import type { Dirent } from 'node:fs';
import path from 'node:path';
import { fs } from './durable-fs';
import { forEachLimited } from './for-each-limited';
import { isLitter } from './litter';
import { isValidObjectId } from '../../sessions/ids';
import { SUMMARIES_DIR, type DataPaths } from './paths';

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

/** Our own top-level entries. */
const CURRENT_TOP_LEVEL = new Set(['sessions', '.staging', '.dev-jwt-secret', '.cursor-key', '.lock', 'quarantine', SUMMARIES_DIR]);
/** Ids the old layout generated: long random tokens, never a name like `backups` or `2024`. */
const LEGACY_SESSION_NAME = /^[A-Za-z0-9_-]{16,128}$/;
/** As many as libuv runs at once: more only queue, and contend for the same parent directory. */
const TREE_CONCURRENCY = 4;

async function readEntries(dir: string): Promise<Dirent[]> {
  return fs.readdir(dir, { withFileTypes: true });
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? 'error';
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

type Verdict = 'legacy' | 'current' | 'unknown';

/**
 * What `sessions/<name>/` (at `dir`, with `entries`) is. Only a candidate for deletion costs
 * more than its own listing: one lstat, and one listing per subdirectory.
 */
async function classify(dir: string, name: string, entries: Dirent[], device: number): Promise<Verdict> {
  const ours = entries.filter((e) => !isLitter(e.name));
  if (!ours.some((e) => e.isFile())) return 'current';
  if (ours.some((e) => isValidObjectId(e.name))) return 'current';
  if (!LEGACY_SESSION_NAME.test(name)) return 'unknown';
  if ((await fs.lstat(dir)).dev !== device) return 'unknown';
  for (const entry of ours.filter((e) => e.isDirectory())) {
    const sub = path.join(dir, entry.name);
    if ((await fs.lstat(sub)).dev !== device) return 'unknown';
    if ((await readEntries(sub)).some((e) => e.isDirectory())) return 'unknown';
  }
  return 'legacy';
}

export async function cleanLegacyData(paths: DataPaths, mode: CleanupMode): Promise<CleanupReport> {
  const started = performance.now();
  const report: CleanupReport = { mode, removed: [], count: 0, bytes: 0, warnings: [], durationMs: 0 };
  if (mode === 'off') return report;
  const remove = mode === 'delete';

  for (const entry of await readEntries(paths.root)) {
    if (CURRENT_TOP_LEVEL.has(entry.name) || isLitter(entry.name)) continue;
    report.warnings.push(
      entry.isSymbolicLink()
        ? `left symbolic link ${entry.name} (never followed)`
        : `left unknown entry ${entry.name} (only sessions/ is ever cleaned up)`,
    );
  }

  const userLevel = await readEntries(paths.sessionsRoot);
  const device = (await fs.lstat(paths.sessionsRoot)).dev;
  await forEachLimited(userLevel, TREE_CONCURRENCY, async (entry) => {
    const relative = `sessions/${entry.name}`;
    const full = path.join(paths.sessionsRoot, entry.name);
    if (isLitter(entry.name)) return;
    if (entry.isSymbolicLink()) {
      report.warnings.push(`left symbolic link ${relative} (never followed)`);
      return;
    }
    if (!entry.isDirectory()) {
      report.warnings.push(`left unknown entry ${relative}`);
      return;
    }
    let entries: Dirent[];
    let verdict: Verdict;
    try {
      entries = await readEntries(full);
      verdict = await classify(full, entry.name, entries, device);
    } catch (error) {
      report.warnings.push(`left ${relative}: cannot read it (${errorCode(error)})`);
      return;
    }
    if (verdict === 'unknown') {
      report.warnings.push(`left unknown entry ${relative} (files in it, but neither a user directory nor the shape of a legacy session)`);
    } else if (verdict === 'current') {
      const stray = entries.filter((e) => !isLitter(e.name) && !e.isDirectory()).map((e) => e.name);
      if (stray.length > 0) report.warnings.push(`left unknown entries in user directory ${relative}: ${stray.slice(0, 5).join(', ')}`);
    } else {
      try {
        // Awaited first, then added: `report.bytes += await ...` would add to a stale total.
        const bytes = await walkTree(full, entries, remove);
        report.bytes += bytes;
        report.removed.push(relative);
      } catch (error) {
        report.warnings.push(`could not finish removing legacy session ${relative} (${errorCode(error)}); what is left stays`);
      }
    }
  });
  report.count = report.removed.length;
  report.removed.sort();
  report.durationMs = Math.round(performance.now() - started);
  return report;
}
