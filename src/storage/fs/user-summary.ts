/**
 * A user's listing summary, `<DATA_DIR>/summaries/<user dir>.json`: what the user's
 * SessionIndex holds (each session's summary, byte counts, file records and file-list
 * state; not the message log's scan, which stays lazy), so that the first listing after a
 * restart reads one file instead of every session's directory.
 *
 * It is a cache, never the source of truth:
 * - It is used only when it passes a strict check of its shape AND is current: the session
 *   directories on disk are exactly the ones it names, and each one's ctime is the one it
 *   recorded (a session created or deleted, a directory restored from a backup, a file in it
 *   created, removed or replaced by rename while the service was stopped: each changes that).
 *   Anything else, and the index is built from the sessions, as without a summary.
 * - The backend removes it before the first change it makes for the user, so a crash at any
 *   instant after a change never leaves one that describes the data before it.
 * - The backend renames a new one into place under the user's lock, and only when no change
 *   began since its snapshot was taken (the index's generation).
 * It lives beside `sessions/`, not in it: a user directory holds only session directories.
 *
 * What it cannot see: a file inside a session directory rewritten in place (not by rename)
 * while the service was stopped leaves the directory's ctime as it was. `check-data
 * --repair` removes every summary, and so does deleting `summaries/`.
 *
 * This module owns the file's format, its check, writing and removing it; FsBackend decides
 * when. Nothing here follows a symbolic link: `summaries/` must be a real directory, the
 * file is opened with O_NOFOLLOW, and a link in its place is removed, never read.
 */
import { lstatSync } from 'node:fs';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { isValidObjectId } from '../../sessions/ids';
import type { SessionSummary } from '../../sessions/ports';
import { ensureDirectory, fs, fsyncDirectory, isErrno, isRealDirectory, readFileNoFollow, writeNewCacheFile } from './durable-fs';
import { StorageIntegrityError } from './fs-errors';
import type { DataPaths } from './paths';
import { chargeOf, type IndexedSession } from './session-index';
import { isObject, isTimestamp, parseFileRecords } from './stored-shapes';

export const SUMMARY_VERSION = 1;
/**
 * Users with fewer sessions get no summary: their index loads from disk in a few
 * milliseconds anyway, and a summary would add a file (an inode) per user for nothing.
 */
export const SUMMARY_MIN_SESSIONS = 200;
/**
 * Session directories lstat'ed (and entries serialized) between two turns of the event
 * loop. Synchronous on purpose: 10,000 async lstats queue through libuv's four threads, a
 * promise each, and cost 100-170 ms; `lstatSync` of a cached inode costs 3-4 us, so 10,000
 * cost 30-40 ms, in slices of about 2 ms that let other requests in between.
 */
const CHUNK = 500;
/**
 * A directory's ctime tells a later change apart only once the clock has moved past it: the
 * kernel stamps ctimes with a coarse clock (one tick, at most 10 ms), and some filesystems
 * keep whole seconds only. A summary is written only when every directory it records was
 * last changed at least this long before the lstat (waiting once if needed).
 */
const SETTLED_MS = 20;
const SETTLED_WHOLE_SECONDS_MS = 2000;

/** One session as stored in a summary: its index entry (the log not yet scanned), and its directory's ctime. */
interface StoredEntry {
  entry: IndexedSession;
  ctimeMs: number;
}

const FILE_KEYS = ['version', 'userId', 'sessions'] as const;
const ENTRY_KEYS = ['summary', 'documentBytes', 'logBytes', 'fileBytes', 'files', 'journal', 'ctimeMs'] as const;
// No `damaged`: a summary never holds a damaged session.
const SUMMARY_KEYS = ['id', 'title', 'createdAt', 'updatedAt', 'version'] as const;
const JOURNAL_KEYS = ['lines', 'onDisk'] as const;

function hasExactly(value: Record<string, unknown>, keys: readonly string[]): boolean {
  if (Object.keys(value).length !== keys.length) return false;
  for (const key of keys) if (!Object.hasOwn(value, key)) return false;
  return true;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isSessionSummary(value: unknown): value is SessionSummary {
  return (
    isObject(value) &&
    hasExactly(value, SUMMARY_KEYS) &&
    isValidObjectId(value.id) &&
    typeof value.title === 'string' &&
    isTimestamp(value.createdAt) &&
    isTimestamp(value.updatedAt) &&
    Number.isSafeInteger(value.version) &&
    (value.version as number) >= 1
  );
}

/** One stored session, checked for its shape and for agreeing with itself; null when it does not. */
function storedEntryOf(value: unknown): StoredEntry | null {
  if (!isObject(value) || !hasExactly(value, ENTRY_KEYS)) return null;
  const { summary, documentBytes, logBytes, fileBytes, journal, ctimeMs } = value;
  if (!isSessionSummary(summary)) return null;
  // A document is never empty; the file charge is what the records say it is.
  if (!isCount(documentBytes) || documentBytes === 0 || !isCount(logBytes) || !isCount(fileBytes)) return null;
  const files = parseFileRecords(value.files);
  if (!files || files.reduce((sum, f) => sum + chargeOf(f), 0) !== fileBytes) return null;
  if (!isObject(journal) || !hasExactly(journal, JOURNAL_KEYS) || !isCount(journal.lines) || typeof journal.onDisk !== 'boolean') return null;
  if (files.length > 0 && !journal.onDisk) return null;
  if (typeof ctimeMs !== 'number' || !Number.isFinite(ctimeMs) || ctimeMs <= 0) return null;
  // Built once, as the index will hold it: for 10,000 sessions a copy per entry costs more than its checks.
  return {
    entry: { summary, documentBytes, logBytes, fileBytes, log: undefined, files, journal: { lines: journal.lines, onDisk: journal.onDisk } },
    ctimeMs,
  };
}

/**
 * The sessions a summary of `userId` holds, or null when it is anything but a well-formed
 * summary of that user, version 1, each session once. Checked by hand, not with zod: for
 * 10,000 sessions zod's first parse costs 35-55 ms, more than this whole check.
 */
export function parseUserSummary(data: Buffer, userId: string): StoredEntry[] | null {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return null;
  }
  if (!isObject(value) || !hasExactly(value, FILE_KEYS)) return null;
  if (value.version !== SUMMARY_VERSION || value.userId !== userId || !Array.isArray(value.sessions)) return null;
  const entries: StoredEntry[] = [];
  const ids = new Set<string>();
  for (const item of value.sessions) {
    const stored = storedEntryOf(item);
    if (!stored || ids.has(stored.entry.summary.id)) return null;
    ids.add(stored.entry.summary.id);
    entries.push(stored);
  }
  return entries;
}

/**
 * Each directory's ctime, in order; null as soon as one is missing or is not a directory.
 * See CHUNK for why this is synchronous, a slice at a time.
 */
async function ctimesOf(dirs: readonly string[]): Promise<number[] | null> {
  const ctimes: number[] = new Array<number>(dirs.length);
  for (let i = 0; i < dirs.length; i++) {
    if (i > 0 && i % CHUNK === 0) await setImmediate();
    let stat;
    try {
      stat = lstatSync(dirs[i]!, { throwIfNoEntry: false });
    } catch (error) {
      if (isErrno(error, 'ENOTDIR')) return null;
      throw error;
    }
    if (!stat?.isDirectory()) return null;
    ctimes[i] = stat.ctimeMs;
  }
  return ctimes;
}

/** `summaries/` is a real directory: never a link (whose target is not ours to read, write or unlink in). */
async function summariesDirectoryIsOurs(paths: DataPaths): Promise<boolean> {
  try {
    return await isRealDirectory(paths.summariesDir);
  } catch (error) {
    if (error instanceof StorageIntegrityError) return false;
    throw error;
  }
}

export type SummaryRead =
  /** Current: the user's index, in listing order, built from it. */
  | { found: 'current'; sessions: IndexedSession[] }
  /** There is none (or `summaries/` is not a real directory, where none of ours can be). */
  | { found: 'none' }
  /** There is something in its place that must not be used: the backend removes it. */
  | { found: 'unusable'; reason: string };

/**
 * The user's summary, if it is well formed and current. `sessionIds` are the session
 * directories in the user's directory now (one readdir, valid ids only: what a load from
 * disk would read). The caller holds the user's lock, so no change of ours is under way.
 */
export async function readUserSummary(paths: DataPaths, userId: string, sessionIds: readonly string[]): Promise<SummaryRead> {
  let ours: boolean;
  try {
    ours = await summariesDirectoryIsOurs(paths);
  } catch (error) {
    // Not known to be absent: it must not be trusted, and a change must still try to remove it.
    return { found: 'unusable', reason: `summaries directory unreadable (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (!ours) return { found: 'none' };
  let data: Buffer | null;
  try {
    data = await readFileNoFollow(paths.summaryFile(userId));
  } catch (error) {
    if (error instanceof StorageIntegrityError) return { found: 'unusable', reason: error.what };
    return { found: 'unusable', reason: `unreadable (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (!data) return { found: 'none' };
  const stored = parseUserSummary(data, userId);
  if (!stored) return { found: 'unusable', reason: 'not a well-formed summary of this user' };
  // Ids are unique on both sides: the same count and every stored id on disk is the same set.
  const onDisk = new Set(sessionIds);
  if (stored.length !== onDisk.size || !stored.every((e) => onDisk.has(e.entry.summary.id))) {
    return { found: 'unusable', reason: 'stale: the session directories are not the ones it names' };
  }
  let ctimes: number[] | null;
  try {
    ctimes = await ctimesOf(paths.sessionDirs(userId, stored.map((e) => e.entry.summary.id)));
  } catch (error) {
    // Whatever stops the check (EACCES, EIO) is the loading from the sessions' to report.
    return { found: 'unusable', reason: `cannot be checked (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (!ctimes || stored.some((e, i) => e.ctimeMs !== ctimes[i])) {
    return { found: 'unusable', reason: 'stale: a session directory changed after it was written' };
  }
  return { found: 'current', sessions: stored.map((e) => e.entry) };
}

/**
 * The summary's bytes for `entries` (listing order), each with its directory's ctime as of
 * now; null when a directory is gone or keeps changing (a change is under way, which the
 * generation check would refuse anyway). Entries are read, never changed: the caller took
 * them under the user's lock and renames the result only if no change began since.
 */
export async function encodeUserSummary(paths: DataPaths, userId: string, entries: readonly IndexedSession[]): Promise<Buffer | null> {
  const dirs = paths.sessionDirs(userId, entries.map((e) => e.summary.id));
  let ctimes: number[] | null = null;
  for (let attempt = 0; attempt < 2 && !ctimes; attempt++) {
    const before = Date.now();
    ctimes = await ctimesOf(dirs);
    if (!ctimes) return null;
    let newest = 0;
    for (const ctime of ctimes) newest = Math.max(newest, ctime);
    const settled = newest % 1000 === 0 ? SETTLED_WHOLE_SECONDS_MS : SETTLED_MS;
    if (newest > before - settled) {
      // A directory changed a moment ago: a change right after this lstat could get the
      // same ctime. Wait until it would not, and look again.
      ctimes = null;
      await sleep(settled);
    }
  }
  if (!ctimes) return null;
  const parts: string[] = new Array<string>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    if (i > 0 && i % CHUNK === 0) await setImmediate();
    const { summary, documentBytes, logBytes, fileBytes, files, journal } = entries[i]!;
    const { id, title, createdAt, updatedAt, version } = summary;
    parts[i] = JSON.stringify({
      summary: { id, title, createdAt, updatedAt, version },
      documentBytes,
      logBytes,
      fileBytes,
      files,
      journal: { lines: journal.lines, onDisk: journal.onDisk },
      ctimeMs: ctimes[i],
    });
  }
  return Buffer.from(`{"version":${SUMMARY_VERSION},"userId":${JSON.stringify(userId)},"sessions":[${parts.join(',')}]}`, 'utf8');
}

/**
 * Writes `data` into a new staging file (same filesystem as `summaries/`) and returns its
 * path, for `installUserSummary` to rename into place. Not fsynced: a summary a crash tears
 * or empties fails the check and is rebuilt; a lost one is written again.
 */
export async function stageUserSummary(paths: DataPaths, data: Buffer): Promise<string> {
  const staged = paths.stagingEntry();
  try {
    await writeNewCacheFile(staged, data);
  } catch (error) {
    await fs.rm(staged, { force: true });
    throw error;
  }
  return staged;
}

/** Renames a staged summary into place; the caller holds the user's lock and knows it is current. */
export async function installUserSummary(paths: DataPaths, userId: string, staged: string): Promise<void> {
  await ensureDirectory(paths.summariesDir);
  await fs.rename(staged, paths.summaryFile(userId));
}

/**
 * Removes the user's summary and makes that durable before returning: true when there was
 * one. A directory where the file belongs is not a summary (it is never read as one) and is
 * left; nothing is followed or touched when `summaries/` is not a real directory.
 */
export async function removeUserSummary(paths: DataPaths, userId: string): Promise<boolean> {
  if (!(await summariesDirectoryIsOurs(paths))) return false;
  try {
    await fs.unlink(paths.summaryFile(userId));
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR', 'EISDIR')) return false;
    throw error;
  }
  await fsyncDirectory(paths.summariesDir);
  return true;
}
