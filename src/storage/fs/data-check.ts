/**
 * The data check (`npm run check-data`): walks a STOPPED service's data directory, reports
 * what is damaged, and with `repair` fixes what is safe to fix and moves what is not into
 * `<DATA_DIR>/quarantine/<timestamp>/` for a person to look at.
 *
 * It owns: reading every directory of the layout, the repairs listed below, and the
 * quarantine directory of its own run. The caller owns the data directory's lock; this
 * module assumes no service is writing.
 *
 * It must never:
 * - follow a symbolic link (entries are classified with lstat / withFileTypes, files are
 *   opened with O_NOFOLLOW, and a link is moved as a link, never entered or resolved);
 * - delete a session document: a session that is not safe to fix is moved whole, by rename;
 * - touch anything outside DATA_DIR: every path is DATA_DIR joined with names read from its
 *   own directories, and quarantine is a sibling of `sessions/` on the same filesystem;
 * - load a blob, or a whole message log, into memory: blobs are only lstat'ed, logs are
 *   scanned in constant memory by `scanMessageLog`.
 *
 * What `repair` deletes is limited to what the service itself would throw away: a message
 * log's torn tail (an append never acknowledged), file bytes no list names that are older
 * than an hour (a commit a crash interrupted), records whose bytes are gone, staging
 * leftovers, and the listing summaries (a cache the service rebuilds from the sessions).
 * Everything else that is wrong is moved, never removed.
 */
import type { Dirent } from 'node:fs';
import path from 'node:path';
import { FILE_OVERHEAD_BYTES, type FileRecord } from '../../sessions/ports';
import { loadFileList } from './file-journal';
import { ensureDirectory, fs, fsyncDirectory, isErrno, readFileNoFollow, replaceFileAtomically, truncateFile } from './durable-fs';
import { forEachLimited } from './for-each-limited';
import { isLitter } from './litter';
import { scanMessageLog } from './message-log';
import {
  FILES_DIR,
  FILE_JOURNAL,
  FILE_LIST,
  MESSAGE_LOG,
  SESSION_DOCUMENT,
  SUMMARIES_DIR,
  SUMMARY_SUFFIX,
  userDirectoryName,
  type DataPaths,
} from './paths';
import { isValidObjectId, isValidUserId } from '../../sessions/ids';
import { LARGEST_STORED_JSON_BYTES, parseSessionDocument } from './stored-shapes';

export type FindingKind =
  | 'damaged-document'
  | 'damaged-log'
  | 'torn-log-tail'
  | 'damaged-file-list'
  | 'unlisted-blob'
  | 'missing-blob'
  | 'size-drift'
  | 'usage-drift'
  | 'stray-entry'
  | 'symbolic-link'
  | 'staging-leftovers'
  | 'unreadable'
  | 'layout'
  | 'foreign-entry'
  | 'quarantine'
  | 'listing-summary'
  | 'litter';

/**
 * - `info`: nothing to do (litter, earlier quarantine runs, entries outside `sessions/`).
 * - `pending`: a check-only run found it; `--repair` would do `action`.
 * - `repaired`: this run did `action`.
 * - `left`: repair does not touch it (`action` says why); it needs a person or a later run.
 * - `failed`: this run tried `action` and could not (`error` says why).
 */
export type FindingOutcome = 'info' | 'pending' | 'repaired' | 'left' | 'failed';

export interface Finding {
  kind: FindingKind;
  /** Relative to DATA_DIR, `/`-separated. */
  path: string;
  /** One short sentence: what is wrong (or, for info, what is there). */
  message: string;
  /** What repair does, did, or why it leaves the entry alone. */
  action: string;
  outcome: FindingOutcome;
  error?: string;
}

/** One user's usage as the service will load it after this run (after `--repair` for a check-only run). */
export interface UserUsage {
  /** The user directory, relative to DATA_DIR. */
  path: string;
  userId: string;
  sessions: number;
  /** What is stored: session documents + message logs + file bytes on disk. */
  bytes: number;
  /** Documents + logs + the sizes the file lists claim. */
  listedBytes: number;
  /** Files the lists name. */
  files: number;
  /** What `/me` reports after a restart: `listedBytes` plus FILE_OVERHEAD_BYTES per listed file. */
  charged: number;
  /** False when part of the user's directory could not be read (see the `unreadable` findings). */
  complete: boolean;
}

export interface DataCheckSummary {
  /** Findings that are not info. */
  problems: number;
  pending: number;
  repaired: number;
  left: number;
  failed: number;
  info: number;
  /** Entries this run moved into quarantine. */
  quarantined: number;
}

export interface DataCheckReport {
  dataDir: string;
  mode: 'check' | 'repair';
  checkedAt: string;
  findings: Finding[];
  usage: UserUsage[];
  /** This run's quarantine directory relative to DATA_DIR, or null when nothing was moved. */
  quarantine: string | null;
  summary: DataCheckSummary;
  /** True when nothing is pending, left or failed: the exit code of the CLI is 0. */
  clean: boolean;
}

export interface DataCheckOptions {
  repair: boolean;
  now: Date;
}

/**
 * Unlisted bytes younger than this may belong to a commit still being made (a service the
 * lock did not stop: another host on a network filesystem, a clock that jumped); older
 * ones are certainly a commit a crash interrupted.
 */
const UNLISTED_BLOB_GRACE_MS = 60 * 60 * 1000;
/** Far above anything the service writes (MAX_JSON_BYTES is at most 64 MiB): larger is damage, not read. */
const MAX_READ_BYTES = LARGEST_STORED_JSON_BYTES;
/** Sessions of one user checked at once: filesystem calls overlap without flooding libuv. */
const SESSION_CONCURRENCY = 8;

const TOP_LEVEL_OURS = new Set(['sessions', '.staging', '.lock', '.dev-jwt-secret', '.cursor-key', 'quarantine', SUMMARIES_DIR]);
const QUARANTINE_DIR = 'quarantine';
const QUARANTINE_SESSION = 'move the whole session directory into quarantine (not safe to fix: a person decides)';
const QUARANTINE_ENTRY = 'move it into quarantine (the entry itself; a link is never followed)';

/** The user id a directory name encodes, or null when `userDirectoryName` would never produce the name. */
export function userIdOfDirectory(name: string): string | null {
  let id = '';
  for (let i = 0; i < name.length; ) {
    const ch = name[i]!;
    if (/[a-z0-9-]/.test(ch)) {
      id += ch;
      i += 1;
    } else if (ch === '_' && /^[0-9a-f]{2}$/.test(name.slice(i + 1, i + 3))) {
      id += String.fromCharCode(parseInt(name.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      return null;
    }
  }
  // Re-encoding rules out names no user id maps to (`_61` for `a`, escapes of forbidden characters).
  return isValidUserId(id) && userDirectoryName(id) === name ? id : null;
}

/** A name the service gives a listing summary: `<user dir>.json`. */
function isSummaryName(name: string): boolean {
  return name.endsWith(SUMMARY_SUFFIX) && userIdOfDirectory(name.slice(0, -SUMMARY_SUFFIX.length)) !== null;
}

/** `2026-11-26T14-30-00Z`: sortable, and without the colons some filesystems and tools refuse. */
export function quarantineStamp(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

function errorText(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}

async function lstatOrNull(file: string) {
  try {
    return await fs.lstat(file);
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return null;
    throw error;
  }
}

function describeType(entry: Dirent): string {
  if (entry.isDirectory()) return 'a directory';
  if (entry.isFile()) return 'a file';
  if (entry.isFIFO()) return 'a named pipe';
  if (entry.isSocket()) return 'a socket';
  return 'a device or special file';
}

/**
 * This run's quarantine directory, created on the first move only (a clean run leaves no
 * trace). Moves keep the entry's path relative to DATA_DIR.
 */
class Quarantine {
  private base: Promise<string> | undefined;
  /** Relative to DATA_DIR, once created. */
  dir: string | null = null;
  moved = 0;

  constructor(
    private readonly root: string,
    private readonly stamp: string,
  ) {}

  async move(relative: string): Promise<void> {
    const base = await (this.base ??= this.createBase());
    const target = path.join(base, relative);
    await this.ensureParents(base, path.dirname(relative));
    // rename replaces an existing file silently: never let a move overwrite anything.
    if (await lstatOrNull(target)) throw new Error(`already in quarantine: ${relative}`);
    const source = path.join(this.root, relative);
    await fs.rename(source, target);
    await fsyncDirectory(path.dirname(source));
    await fsyncDirectory(path.dirname(target));
    this.moved += 1;
  }

  private async createBase(): Promise<string> {
    const top = path.join(this.root, QUARANTINE_DIR);
    await this.mkdirOnce(top);
    // Two runs in the same second get two directories: a move never lands in an earlier run's tree.
    for (let n = 1; ; n++) {
      const name = n === 1 ? this.stamp : `${this.stamp}-${n}`;
      const dir = path.join(top, name);
      try {
        await fs.mkdir(dir, { mode: 0o700 });
      } catch (error) {
        if (isErrno(error, 'EEXIST')) continue;
        throw error;
      }
      await fsyncDirectory(top);
      this.dir = `${QUARANTINE_DIR}/${name}`;
      return dir;
    }
  }

  /** One level; an existing entry must be a real directory (lstat), never a link to one. */
  private async mkdirOnce(dir: string): Promise<void> {
    try {
      await fs.mkdir(dir, { mode: 0o700 });
      await fsyncDirectory(path.dirname(dir));
      return;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
    }
    const stat = await fs.lstat(dir);
    if (!stat.isDirectory()) throw new Error(`${path.relative(this.root, dir)} is not a directory`);
  }

  private async ensureParents(base: string, relativeDir: string): Promise<void> {
    let dir = base;
    for (const part of relativeDir.split('/')) {
      if (part === '.' || part === '') continue;
      dir = path.join(dir, part);
      await this.mkdirOnce(dir);
    }
  }
}

interface UserTally {
  sessions: number;
  bytes: number;
  listedBytes: number;
  files: number;
  /** Before this run's repairs, for the usage-drift finding: what the lists claim, what files/ holds. */
  claimedBefore: number;
  storedBefore: number;
  /** Some session's list and files/ disagree (totals alone could cancel out). */
  drifted: boolean;
  /** False when a fix the drift depends on is left or failed. */
  driftFixable: boolean;
  complete: boolean;
}

class DataCheck {
  readonly findings: Finding[] = [];
  readonly usage: UserUsage[] = [];
  private readonly quarantine: Quarantine;
  private stagingReady: Promise<void> | undefined;
  /** Repairs are made: --repair, unless the listing summaries could not be removed first. */
  private repair: boolean;

  constructor(
    private readonly paths: DataPaths,
    private readonly options: DataCheckOptions,
  ) {
    this.quarantine = new Quarantine(paths.root, quarantineStamp(options.now));
    this.repair = options.repair;
  }

  get quarantineDir(): string | null {
    return this.quarantine.dir;
  }

  get quarantined(): number {
    return this.quarantine.moved;
  }

  private abs(relative: string): string {
    return path.join(this.paths.root, relative);
  }

  private info(kind: FindingKind, relative: string, message: string, action = ''): Finding {
    const finding: Finding = { kind, path: relative, message, action, outcome: 'info' };
    this.findings.push(finding);
    return finding;
  }

  /** A problem repair will not touch: `reason` says why. */
  private left(kind: FindingKind, relative: string, message: string, reason: string): Finding {
    const finding: Finding = { kind, path: relative, message, action: reason, outcome: 'left' };
    this.findings.push(finding);
    return finding;
  }

  /** A problem repair fixes with `action`; pending until `apply` runs it. */
  private fixable(kind: FindingKind, relative: string, message: string, action: string): Finding {
    const finding: Finding = { kind, path: relative, message, action, outcome: 'pending' };
    this.findings.push(finding);
    return finding;
  }

  /**
   * Runs `work` for `findings` when repairing and records the outcome on each; a failure is
   * recorded, never thrown, so one bad entry does not stop the walk. True when it ran and
   * succeeded.
   */
  private async apply(findings: Finding[], work: () => Promise<void>): Promise<boolean> {
    if (!this.repair || findings.length === 0) return false;
    try {
      await work();
      for (const f of findings) f.outcome = 'repaired';
      return true;
    } catch (error) {
      for (const f of findings) {
        f.outcome = 'failed';
        f.error = errorText(error);
      }
      return false;
    }
  }

  /** Runs one step of a repair that has more steps; on failure, records it and returns false. */
  private async attempt(finding: Finding, work: () => Promise<void>): Promise<boolean> {
    try {
      await work();
      return true;
    } catch (error) {
      finding.outcome = 'failed';
      finding.error = errorText(error);
      return false;
    }
  }

  private unreadable(relative: string, error: unknown): void {
    this.left('unreadable', relative, `could not be read (${errorText(error)}); skipped, nothing in it was checked or changed`, 'fix its permissions, then run the check again');
  }

  /** A directory's entries sorted by name, or null (reported) when it cannot be read. */
  private async entries(relative: string): Promise<Dirent[] | null> {
    try {
      const entries = await fs.readdir(this.abs(relative), { withFileTypes: true });
      return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return null;
      this.unreadable(relative, error);
      return null;
    }
  }

  private strayFinding(relative: string, entry: Dirent, where: string, action: string): Finding {
    return entry.isSymbolicLink()
      ? this.fixable('symbolic-link', relative, `a symbolic link ${where}; never followed`, action)
      : this.fixable('stray-entry', relative, `${describeType(entry)} that is not part of the layout ${where}`, action);
  }

  /** A stray entry or a link: moved aside whole. */
  private async strayOrLink(relative: string, entry: Dirent, where: string): Promise<boolean> {
    const finding = this.strayFinding(relative, entry, where, QUARANTINE_ENTRY);
    return this.apply([finding], () => this.quarantine.move(relative));
  }

  async run(): Promise<void> {
    const top = await this.entries('.');
    if (!top) return;
    const byName = new Map(top.map((e) => [e.name, e]));

    // First: with --repair the summaries go before any repair below changes a session.
    const summaries = byName.get(SUMMARIES_DIR);
    if (summaries) await this.checkSummaries(summaries);

    const staging = byName.get('.staging');
    if (staging) await this.checkStaging(staging);

    const quarantine = byName.get(QUARANTINE_DIR);
    if (quarantine) {
      if (quarantine.isDirectory()) {
        const runs = (await this.entries(QUARANTINE_DIR)) ?? [];
        if (runs.length > 0) {
          this.info('quarantine', QUARANTINE_DIR, `holds ${runs.length} earlier run(s) of check-data --repair for a person to look at`, 'never read, changed or emptied by check-data');
        }
      } else {
        this.left('layout', QUARANTINE_DIR, `is ${quarantine.isSymbolicLink() ? 'a symbolic link' : describeType(quarantine)}, not a directory`, 'nothing can be moved into quarantine until a person replaces it with a directory');
      }
    }

    for (const entry of top) {
      if (TOP_LEVEL_OURS.has(entry.name)) continue;
      if (isLitter(entry.name)) {
        this.info('litter', entry.name, 'operating-system or editor litter', 'left alone');
      } else {
        // Outside sessions/ an unknown entry may be an operator's own (a backup, notes):
        // legacy cleanup handles old layouts at start and warns about the rest.
        this.info('foreign-entry', entry.name, `${entry.isSymbolicLink() ? 'a symbolic link' : describeType(entry)} that is not part of the layout`, 'left alone (never followed); the service ignores it');
      }
    }

    const sessions = byName.get('sessions');
    if (sessions) {
      if (sessions.isDirectory()) await this.checkSessionsRoot();
      else {
        this.left('layout', 'sessions', `is ${sessions.isSymbolicLink() ? 'a symbolic link' : describeType(sessions)}, not a directory: the service refuses to start`, 'never followed; a person decides what it should be');
      }
    }
  }

  /**
   * `summaries/`: the service's listing summaries, a cache of what `sessions/` holds, which
   * the service checks itself before it uses one. With --repair they are all removed, and
   * first: a repair can change what a summary recorded without changing what the service
   * compares it with (a log tail cut in place), and the service rebuilds each from the
   * sessions. Anything else in there is a stray entry.
   */
  private async checkSummaries(entry: Dirent): Promise<void> {
    if (!entry.isDirectory()) {
      await this.strayOrLink(SUMMARIES_DIR, entry, 'where the listing summaries directory belongs (the service keeps no summary until it is a directory)');
      return;
    }
    const entries = await this.entries(SUMMARIES_DIR);
    if (!entries) return;
    const names: string[] = [];
    for (const child of entries) {
      const relative = `${SUMMARIES_DIR}/${child.name}`;
      if (isLitter(child.name)) this.info('litter', relative, 'operating-system or editor litter', 'left alone');
      else if (child.isFile() && isSummaryName(child.name)) names.push(child.name);
      else await this.strayOrLink(relative, child, '(only listing summaries, <user dir>.json, belong in summaries/)');
    }
    if (names.length === 0) return;
    const message = `${names.length} listing summar${names.length === 1 ? 'y' : 'ies'}: a cache of sessions/ that lets the service list large users at once`;
    if (!this.repair) {
      this.info('listing-summary', SUMMARIES_DIR, message, '--repair removes them; the service rebuilds each from the sessions');
      return;
    }
    const finding = this.info('listing-summary', SUMMARIES_DIR, message, 'removed them before any repair; the service rebuilds each from the sessions');
    try {
      for (const name of names) await fs.rm(path.join(this.paths.summariesDir, name), { force: true });
      await fsyncDirectory(this.paths.summariesDir);
    } catch (error) {
      // A repair that a summary does not see (a log tail cut in place) could then be listed
      // from the summary: nothing else is repaired until they can be removed.
      finding.outcome = 'failed';
      finding.action = 'remove them, so nothing else was repaired (a repair may change what a summary recorded)';
      finding.error = errorText(error);
      this.repair = false;
    }
  }

  private async checkStaging(staging: Dirent): Promise<void> {
    if (!staging.isDirectory()) {
      this.left('layout', '.staging', `is ${staging.isSymbolicLink() ? 'a symbolic link' : describeType(staging)}, not a directory: the service refuses to start`, 'never followed; a person decides what it should be');
      return;
    }
    const entries = await this.entries('.staging');
    if (!entries || entries.length === 0) return;
    const finding = this.fixable(
      'staging-leftovers',
      '.staging',
      `${entries.length} leftover(s) of interrupted writes (never acknowledged data)`,
      'remove them (the service also does this at every start)',
    );
    await this.apply([finding], async () => {
      // rm does not follow links: a link left in staging is unlinked, its target untouched.
      for (const entry of entries) await fs.rm(path.join(this.paths.staging, entry.name), { recursive: true, force: true });
      await fsyncDirectory(this.paths.staging);
    });
  }

  private async checkSessionsRoot(): Promise<void> {
    const entries = await this.entries('sessions');
    if (!entries) return;
    for (const entry of entries) {
      const relative = `sessions/${entry.name}`;
      if (isLitter(entry.name)) this.info('litter', relative, 'operating-system or editor litter', 'left alone');
      else if (entry.isDirectory() && userIdOfDirectory(entry.name) !== null) await this.checkUser(entry.name);
      else if (entry.isDirectory()) await this.strayOrLink(relative, entry, '(no user id encodes to this name, and only user directories belong in sessions/)');
      else await this.strayOrLink(relative, entry, '(only user directories belong in sessions/)');
    }
  }

  private async checkUser(dirName: string): Promise<void> {
    const relative = `sessions/${dirName}`;
    const tally: UserTally = { sessions: 0, bytes: 0, listedBytes: 0, files: 0, claimedBefore: 0, storedBefore: 0, drifted: false, driftFixable: true, complete: true };
    const entries = await this.entries(relative);
    if (!entries) {
      tally.complete = false;
    } else {
      const sessionIds: string[] = [];
      for (const entry of entries) {
        const child = `${relative}/${entry.name}`;
        if (isLitter(entry.name)) this.info('litter', child, 'operating-system or editor litter', 'left alone');
        else if (entry.isDirectory() && isValidObjectId(entry.name)) sessionIds.push(entry.name);
        else await this.strayOrLink(child, entry, '(only session directories belong in a user directory)');
      }
      await forEachLimited(sessionIds, SESSION_CONCURRENCY, async (sessionId) => {
        try {
          await this.checkSession(`${relative}/${sessionId}`, sessionId, tally);
        } catch (error) {
          // Whatever one session throws (EIO, a file that vanished), the walk goes on.
          tally.complete = false;
          this.unreadable(`${relative}/${sessionId}`, error);
        }
      });
    }

    if (tally.drifted) {
      const finding = this.fixable(
        'usage-drift',
        relative,
        `the file lists claim ${tally.claimedBefore} bytes, files/ holds ${tally.storedBefore} bytes`,
        'nothing to rewrite: the service keeps no usage record and recomputes usage from the file lists at start; the file fixes of this user remove the drift',
      );
      if (!tally.driftFixable) {
        finding.outcome = 'left';
        finding.action = 'the file fixes of this user do not all apply yet (see above): the drift stays until they do';
      } else if (this.repair) {
        finding.outcome = tally.bytes === tally.listedBytes ? 'repaired' : 'failed';
        if (finding.outcome === 'failed') finding.error = 'a file fix of this user failed';
      }
    }
    this.usage.push({
      path: relative,
      userId: userIdOfDirectory(dirName)!,
      sessions: tally.sessions,
      bytes: tally.bytes,
      listedBytes: tally.listedBytes,
      files: tally.files,
      charged: tally.listedBytes + tally.files * FILE_OVERHEAD_BYTES,
      complete: tally.complete,
    });
  }

  /**
   * One session. Damage that is not safe to fix (a document, a log line before the end, a
   * file list, a link or wrong type where the layout has one of its own names) moves the
   * whole session directory into quarantine and nothing inside it is changed; otherwise the
   * safe fixes are applied one by one.
   */
  private async checkSession(relative: string, sessionId: string, user: UserTally): Promise<void> {
    const entries = await this.entries(relative);
    if (!entries) {
      user.complete = false;
      return;
    }
    const own = new Map<string, Dirent>();
    const unsafe: Finding[] = [];
    const inner: Array<{ relative: string; entry: Dirent; where: string }> = [];
    const unsafeFinding = (kind: FindingKind, at: string, message: string) => {
      unsafe.push(this.fixable(kind, at, message, QUARANTINE_SESSION));
    };
    for (const entry of entries) {
      const child = `${relative}/${entry.name}`;
      if (isLitter(entry.name)) this.info('litter', child, 'operating-system or editor litter', 'left alone');
      else if ([SESSION_DOCUMENT, MESSAGE_LOG, FILE_LIST, FILE_JOURNAL, FILES_DIR].includes(entry.name)) own.set(entry.name, entry);
      else inner.push({ relative: child, entry, where: '(a session directory holds session.json, messages.jsonl, files.json, files.jsonl and files/)' });
    }

    // The document.
    const documentEntry = own.get(SESSION_DOCUMENT);
    const documentPath = `${relative}/${SESSION_DOCUMENT}`;
    let documentBytes = 0;
    if (!documentEntry) {
      unsafeFinding('damaged-document', documentPath, 'the session document is missing');
    } else if (documentEntry.isSymbolicLink()) {
      unsafeFinding('symbolic-link', documentPath, 'the session document is a symbolic link; never followed');
    } else if (!documentEntry.isFile()) {
      unsafeFinding('damaged-document', documentPath, `the session document is ${describeType(documentEntry)}`);
    } else {
      const problem = await this.documentProblem(this.abs(documentPath), sessionId);
      if (typeof problem === 'string') unsafeFinding('damaged-document', documentPath, problem);
      else documentBytes = problem.bytes;
    }

    // The message log: scanned line by line in constant memory.
    const logEntry = own.get(MESSAGE_LOG);
    const logPath = `${relative}/${MESSAGE_LOG}`;
    let log: { size: number; keptBytes: number; tornBytes: number; lines: number } | null = null;
    if (logEntry?.isSymbolicLink()) {
      unsafeFinding('symbolic-link', logPath, 'the message log is a symbolic link; never followed');
    } else if (logEntry && !logEntry.isFile()) {
      unsafeFinding('damaged-log', logPath, `the message log is ${describeType(logEntry)}`);
    } else if (logEntry) {
      const scan = await scanMessageLog(this.abs(logPath), { everyLine: true });
      if (scan.damagedSeq !== null) {
        unsafeFinding('damaged-log', logPath, `line ${scan.damagedSeq} (seq ${scan.damagedSeq}) is damaged and later lines follow it: not a torn tail, never cut or skipped`);
      } else {
        log = { size: scan.keptBytes + scan.tornBytes, keptBytes: scan.keptBytes, tornBytes: scan.tornBytes, lines: scan.lines };
      }
    }

    // The file list: the snapshot and the journal of changes since.
    const listPath = `${relative}/${FILE_LIST}`;
    const journalPath = `${relative}/${FILE_JOURNAL}`;
    let list: FileRecord[] = [];
    let journal = { bytes: 0, tornBytes: 0 };
    let listSound = true;
    for (const [name, at] of [[FILE_LIST, listPath], [FILE_JOURNAL, journalPath]] as const) {
      const entry = own.get(name);
      if (entry?.isSymbolicLink()) unsafeFinding('symbolic-link', at, 'part of the file list is a symbolic link; never followed');
      else if (entry && !entry.isFile()) unsafeFinding('damaged-file-list', at, `part of the file list is ${describeType(entry)}`);
      else continue;
      listSound = false;
    }
    if (listSound && (own.has(FILE_LIST) || own.has(FILE_JOURNAL))) {
      const parsed = await this.readFileList(this.abs(listPath), this.abs(journalPath));
      if (typeof parsed === 'string') {
        unsafeFinding('damaged-file-list', listPath, parsed);
      } else {
        list = parsed.files;
        journal = { bytes: parsed.journalBytes, tornBytes: parsed.tornBytes };
      }
    }

    // The files directory: only lstat'ed, a blob is never read.
    const filesEntry = own.get(FILES_DIR);
    const filesPath = `${relative}/${FILES_DIR}`;
    const blobs = new Map<string, { size: number; mtimeMs: number }>();
    let filesReadable = true;
    if (filesEntry?.isSymbolicLink()) {
      unsafeFinding('symbolic-link', filesPath, 'the files directory is a symbolic link; never followed');
    } else if (filesEntry && !filesEntry.isDirectory()) {
      unsafeFinding('stray-entry', filesPath, `is ${describeType(filesEntry)} where the files directory belongs`);
    } else if (filesEntry) {
      const files = await this.entries(filesPath);
      filesReadable = files !== null;
      for (const entry of files ?? []) {
        const child = `${filesPath}/${entry.name}`;
        if (isLitter(entry.name)) {
          this.info('litter', child, 'operating-system or editor litter', 'left alone');
        } else if (entry.isFile() && isValidObjectId(entry.name)) {
          const stat = await fs.lstat(this.abs(child));
          blobs.set(entry.name, { size: stat.size, mtimeMs: stat.mtimeMs });
        } else {
          inner.push({ relative: child, entry, where: '(only file bytes named by their id belong in files/)' });
        }
      }
    }

    if (listSound && !own.has(FILE_LIST) && !own.has(FILE_JOURNAL) && blobs.size > 0) {
      // The service creates the journal before a session's first bytes go in: bytes without
      // any list mean the list was removed. They are not unlisted leftovers to delete.
      unsafeFinding('damaged-file-list', listPath, `the file list is missing while files/ holds ${blobs.size} file(s)`);
    }

    if (unsafe.length > 0) {
      // Everything else wrong inside goes with the session: report it, change nothing in it.
      for (const { relative: at, entry, where } of inner) unsafe.push(this.strayFinding(at, entry, where, QUARANTINE_SESSION));
      await this.apply(unsafe, () => this.quarantine.move(relative));
      return;
    }

    for (const { relative: at, entry, where } of inner) await this.strayOrLink(at, entry, where);

    let logBytes = 0;
    if (log) {
      logBytes = log.size;
      if (log.tornBytes > 0) {
        const finding = this.fixable(
          'torn-log-tail',
          logPath,
          `${log.tornBytes} bytes after ${log.lines === 0 ? 'the start of the log' : `message seq ${log.lines}`} are an append that was never acknowledged`,
          `cut them (truncate to ${log.keptBytes} bytes)`,
        );
        const cut = await this.apply([finding], () => truncateFile(this.abs(logPath), log.keptBytes));
        // A check-only run reports usage as it will be once --repair has run.
        if (cut || !this.repair) logBytes = log.keptBytes;
      }
    }

    if (journal.tornBytes > 0) {
      const finding = this.fixable(
        'torn-log-tail',
        journalPath,
        `${journal.tornBytes} bytes at the end of the file journal are a change that was never acknowledged`,
        `cut them (truncate to ${journal.bytes} bytes)`,
      );
      await this.apply([finding], () => truncateFile(this.abs(journalPath), journal.bytes));
    }

    let files = { listed: 0, stored: 0, count: 0 };
    if (filesReadable) {
      files = await this.checkFiles(filesPath, listPath, list, blobs, user);
    } else {
      // Without the listing no blob can be told unlisted or missing: nothing here is changed.
      user.complete = false;
      user.driftFixable = false;
    }
    user.sessions += 1;
    user.bytes += documentBytes + logBytes + files.stored;
    user.listedBytes += documentBytes + logBytes + files.listed;
    user.files += files.count;
  }

  /** The document's size when it is sound, else what is wrong with it. */
  private async documentProblem(file: string, sessionId: string): Promise<string | { bytes: number }> {
    const stat = await fs.lstat(file);
    if (stat.size > MAX_READ_BYTES) return `the session document is ${stat.size} bytes, larger than any the service writes`;
    const data = await readFileNoFollow(file);
    if (!data) return 'the session document is missing';
    if (parseSessionDocument(data, sessionId)) return { bytes: data.length };
    let value: unknown;
    try {
      value = JSON.parse(data.toString('utf8'));
    } catch {
      return data.length === 0 ? 'the session document is empty' : 'the session document is not valid JSON (cut or overwritten)';
    }
    if (typeof value === 'object' && value !== null && 'id' in value && (value as { id: unknown }).id !== sessionId) {
      return `the session document's id (${JSON.stringify((value as { id: unknown }).id).slice(0, 60)}) is not its directory name`;
    }
    return 'the session document does not have the shape of a session';
  }

  /** The list as the service will load it (snapshot plus journal), or what is wrong with it. */
  private async readFileList(snapshot: string, journal: string) {
    const stat = await lstatOrNull(snapshot);
    if (stat && stat.size > MAX_READ_BYTES) return `the file list is ${stat.size} bytes, larger than any the service writes`;
    const loaded = await loadFileList(snapshot, journal);
    if (!loaded) {
      return 'the file list (files.json, or a line of files.jsonl before its end) is not valid JSON or not file records with unique ids';
    }
    return loaded;
  }

  /**
   * Makes the list and `files/` agree, as the service's own reconciliation at load would,
   * with two differences: size drift is caught (the bytes go to quarantine, not to waste),
   * and unlisted bytes younger than the grace period are left. Returns the bytes the list
   * will claim and the bytes `files/` will hold after the repairs (predicted for a check-only
   * run).
   */
  private async checkFiles(
    filesPath: string,
    listPath: string,
    list: FileRecord[],
    blobs: Map<string, { size: number; mtimeMs: number }>,
    user: UserTally,
  ): Promise<{ listed: number; stored: number; count: number }> {
    let claimed = 0;
    let stored = 0;
    for (const record of list) claimed += record.size;
    for (const blob of blobs.values()) stored += blob.size;
    user.claimedBefore += claimed;
    user.storedBefore += stored;
    if (claimed !== stored) user.drifted = true;
    const listed = new Set(list.map((f) => f.id));

    for (const [id, blob] of blobs) {
      if (listed.has(id)) continue;
      const at = `${filesPath}/${id}`;
      const ageMs = this.options.now.getTime() - blob.mtimeMs;
      if (ageMs < UNLISTED_BLOB_GRACE_MS) {
        this.left('unlisted-blob', at, `${blob.size} bytes no file list names, modified ${Math.max(0, Math.round(ageMs / 60000))} min ago`, 'left: younger than one hour (a later run, or the service when it next loads this user, removes it)');
        user.driftFixable = false;
        continue;
      }
      const finding = this.fixable('unlisted-blob', at, `${blob.size} bytes no file list names (an upload whose commit a crash interrupted)`, 'remove them (never acknowledged)');
      const removed = await this.apply([finding], async () => {
        await fs.unlink(this.abs(at));
        await fsyncDirectory(this.abs(filesPath));
      });
      if (removed || !this.repair) stored -= blob.size;
    }

    const keep: FileRecord[] = [];
    const drop: Finding[] = [];
    for (const record of list) {
      const at = `${filesPath}/${record.id}`;
      const blob = blobs.get(record.id);
      if (!blob) {
        drop.push(this.fixable('missing-blob', listPath, `names file ${record.id} (${JSON.stringify(record.name).slice(0, 80)}) whose bytes are gone`, 'drop the record from the file list'));
        continue;
      }
      if (blob.size === record.size) {
        keep.push(record);
        continue;
      }
      const finding = this.fixable('size-drift', at, `${blob.size} bytes on disk, the file list records ${record.size}`, 'move the bytes into quarantine and drop the record');
      // The record is dropped only once its bytes are safe in quarantine: bytes no list
      // names are deleted by the service at its next start.
      const moved = this.repair ? await this.attempt(finding, () => this.quarantine.move(at)) : true;
      if (moved) {
        drop.push(finding);
        stored -= blob.size;
      } else {
        keep.push(record);
        user.driftFixable = false;
      }
    }

    let kept = keep;
    if (drop.length > 0) {
      // A new snapshot, then the journal it folds in goes, as the service compacts: a crash in
      // between replays a journal the snapshot already holds, which changes nothing.
      const journalPath = `${path.posix.dirname(listPath)}/${FILE_JOURNAL}`;
      const rewritten = await this.apply(drop, async () => {
        await (this.stagingReady ??= ensureDirectory(this.paths.staging));
        await replaceFileAtomically(this.paths.stagingEntry(), this.abs(listPath), JSON.stringify(keep));
        await fs.rm(this.abs(journalPath), { force: true });
        await fsyncDirectory(path.dirname(this.abs(listPath)));
      });
      if (this.repair && !rewritten) {
        // The list still names them all: count them as the service will.
        kept = list;
        user.driftFixable = false;
      }
    }
    return { listed: kept.reduce((sum, f) => sum + f.size, 0), stored, count: kept.length };
  }
}

function summarize(findings: Finding[], quarantined: number): DataCheckSummary {
  const count = (outcome: FindingOutcome) => findings.filter((f) => f.outcome === outcome).length;
  const info = count('info');
  return {
    problems: findings.length - info,
    pending: count('pending'),
    repaired: count('repaired'),
    left: count('left'),
    failed: count('failed'),
    info,
    quarantined,
  };
}

/** Walks `paths.root` and, with `repair`, fixes what is safe. The caller holds the data directory's lock. */
export async function checkData(paths: DataPaths, options: DataCheckOptions): Promise<DataCheckReport> {
  const check = new DataCheck(paths, options);
  await check.run();
  // Sessions are checked concurrently: order the report by path (stable, so within one path
  // findings keep the order they were found in).
  const findings = [...check.findings].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const usage = [...check.usage].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const summary = summarize(findings, check.quarantined);
  return {
    dataDir: paths.root,
    mode: options.repair ? 'repair' : 'check',
    checkedAt: options.now.toISOString(),
    findings,
    usage,
    quarantine: check.quarantineDir,
    summary,
    clean: summary.pending + summary.left + summary.failed === 0,
  };
}
