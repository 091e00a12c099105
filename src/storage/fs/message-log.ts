/**
 * Line logs read back after a crash: a session's message log (`messages.jsonl`, line k
 * holding seq k) and its file journal (`files.jsonl`).
 *
 * An append is acknowledged only after its fsync, so a power cut can damage only the
 * unacknowledged end of a log: bytes after the last newline, or a last line that landed
 * as zeros or half-written. That end is the *torn tail*: it is cut off (nobody was told it
 * was stored) and the log goes on. A line that fails its check anywhere before the end is
 * damage of another kind: it is never skipped or cut, it makes the session damaged.
 *
 * Everything here reads in bounded chunks: memory depends on the chunk and the longest
 * line, never on the length of the log.
 */
import { read } from 'node:fs';
import { promisify } from 'node:util';
import { closeFd, openNoFollow } from './durable-fs';
import { LARGEST_STORED_JSON_BYTES, messageLineVerdict, type LineVerdict } from './stored-shapes';

const readFd = promisify(read);

const SCAN_CHUNK_BYTES = 1024 * 1024;
/** Paged reads are small: a page of messages, plus what lies between it and a checkpoint. */
const PAGE_CHUNK_BYTES = 64 * 1024;
/** A line longer than any the service writes is damage, and its bytes are not kept. */
const MAX_LINE_BYTES = LARGEST_STORED_JSON_BYTES;
/** Every this many lines the scan remembers where a line starts, so a page can seek near it. */
export const CHECKPOINT_LINES = 16;

export interface LogScan {
  /** Complete, valid lines that stay: the next message appended gets seq `lines + 1`. */
  lines: number;
  /** Where the kept lines end: the length to cut the file to when `tornBytes > 0`. */
  keptBytes: number;
  /** Bytes of the torn tail (0 when the log ends cleanly). */
  tornBytes: number;
  /** Number (1-based) of the first line before the tail that failed its check; null when none was seen. */
  damagedSeq: number | null;
  /** Byte offsets of lines 1, 1 + CHECKPOINT_LINES, 1 + 2 * CHECKPOINT_LINES ... among the kept lines. */
  checkpoints: number[];
}

export interface ScanOptions {
  /**
   * Reads `line` (without its newline) as line number `n`. Only an `unparseable` last line is
   * a torn tail; an `invalid` one (it parses, but is not what belongs there) is damage.
   */
  check(line: Buffer, n: number): LineVerdict;
  /** Check every line (the data check, the file journal); otherwise only the last one. */
  everyLine: boolean;
}

/** Runs `work` on the log (a regular file, never through a link), or answers `missing`. */
async function withLog<T>(file: string, missing: T, work: (fd: number) => Promise<T>): Promise<T> {
  const fd = await openNoFollow(file);
  if (fd === null) return missing;
  try {
    return await work(fd);
  } finally {
    await closeFd(fd);
  }
}

const EMPTY_SCAN: LogScan = { lines: 0, keptBytes: 0, tornBytes: 0, damagedSeq: null, checkpoints: [] };

/** Scans a log once, start to end, and says what of it stands. A missing log is an empty one. */
export function scanLog(file: string, options: ScanOptions): Promise<LogScan> {
  return withLog(file, { ...EMPTY_SCAN, checkpoints: [] }, (fd) => scanDescriptor(fd, options));
}

/** The message log: line n must be the message with seq n. */
export function scanMessageLog(file: string, options: { everyLine: boolean }): Promise<LogScan> {
  return scanLog(file, { check: messageLineVerdict, everyLine: options.everyLine });
}

async function readExactly(fd: number, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await readFd(fd, buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

async function scanDescriptor(fd: number, options: ScanOptions): Promise<LogScan> {
  const buffer = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
  const checkpoints: number[] = [];
  let position = 0;
  let lines = 0;
  let damagedSeq: number | null = null;
  // The line being read, kept only when every line is checked (and no longer than the bound).
  let current: Buffer[] = [];
  let currentBytes = 0;
  let last: { n: number; start: number; end: number; verdict: LineVerdict | null } | null = null;
  let lineStart = 0;

  for (;;) {
    const { bytesRead } = await readFd(fd, buffer, 0, SCAN_CHUNK_BYTES, position);
    if (bytesRead === 0) break;
    let from = 0;
    for (let nl = buffer.indexOf(0x0a, 0); nl >= 0 && nl < bytesRead; nl = buffer.indexOf(0x0a, from)) {
      lines += 1;
      if ((lines - 1) % CHECKPOINT_LINES === 0) checkpoints.push(lineStart);
      let verdict: LineVerdict | null = null;
      if (options.everyLine) {
        if (currentBytes + nl - from <= MAX_LINE_BYTES) current.push(buffer.subarray(from, nl));
        verdict = currentBytes + nl - from <= MAX_LINE_BYTES ? options.check(Buffer.concat(current), lines) : 'invalid';
      }
      // The line before this one is no longer the last: a bad line there is damage, not a tail.
      if (last && last.verdict !== null && last.verdict !== 'valid' && damagedSeq === null) damagedSeq = last.n;
      last = { n: lines, start: lineStart, end: position + nl, verdict };
      lineStart = position + nl + 1;
      current = [];
      currentBytes = 0;
      from = nl + 1;
    }
    if (options.everyLine && from < bytesRead && currentBytes + bytesRead - from <= MAX_LINE_BYTES) {
      // Copied: the chunk buffer is reused by the next read.
      current.push(Buffer.from(buffer.subarray(from, bytesRead)));
    }
    currentBytes += bytesRead - from;
    position += bytesRead;
  }

  let keptBytes = lineStart;
  let tornBytes = position - lineStart;
  if (last) {
    const length = last.end - last.start;
    const verdict = last.verdict ?? (length <= MAX_LINE_BYTES ? options.check(await readExactly(fd, length, last.start), last.n) : 'invalid');
    if (verdict === 'unparseable') {
      keptBytes = last.start;
      tornBytes = position - last.start;
      lines -= 1;
      if (checkpoints.at(-1) === last.start) checkpoints.pop();
    } else if (verdict === 'invalid' && damagedSeq === null) {
      damagedSeq = last.n;
    }
  }
  return { lines, keptBytes, tornBytes, damagedSeq, checkpoints };
}

/**
 * Reads up to `limit` lines after line `after` of a log whose first `endBytes` bytes hold
 * complete lines, starting from the nearest checkpoint at or before the first line wanted.
 * Returns the lines (without newlines) and whether more follow. Memory and time depend on
 * the page and the distance to the checkpoint, not on the log.
 */
export function readLines(
  file: string,
  position: { checkpoints: number[]; endBytes: number },
  page: { after: number; limit: number },
): Promise<{ lines: Array<{ n: number; text: Buffer }>; more: boolean } | null> {
  return withLog(file, null, async (fd) => {
    const checkpoint = Math.min(Math.floor(page.after / CHECKPOINT_LINES), position.checkpoints.length - 1);
    const result: Array<{ n: number; text: Buffer }> = [];
    if (checkpoint < 0) return { lines: result, more: false };
    let offset = position.checkpoints[checkpoint]!;
    let n = checkpoint * CHECKPOINT_LINES;
    // The page (and the line that says whether more follow) ends before the checkpoint after
    // it: reading up to there takes one read for most pages, and nothing beyond.
    const beyond = position.checkpoints[Math.ceil((page.after + page.limit + 1) / CHECKPOINT_LINES)] ?? position.endBytes;
    const end = Math.min(position.endBytes, beyond);
    let pending: Buffer[] = [];
    while (offset < end || (offset < position.endBytes && pending.length > 0)) {
      const chunk = await readExactly(fd, Math.min(Math.max(PAGE_CHUNK_BYTES, end - offset), position.endBytes - offset), offset);
      if (chunk.length === 0) break;
      offset += chunk.length;
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
        n += 1;
        if (n > page.after) {
          if (result.length === page.limit) return { lines: result, more: true };
          pending.push(chunk.subarray(from, nl));
          result.push({ n, text: pending.length === 1 ? pending[0]! : Buffer.concat(pending) });
        }
        pending = [];
        from = nl + 1;
      }
      // Kept only for a line that will be returned; bytes of skipped lines are dropped.
      if (from < chunk.length && n + 1 > page.after) pending.push(chunk.subarray(from));
    }
    return { lines: result, more: false };
  });
}
