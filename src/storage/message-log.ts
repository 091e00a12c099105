/**
 * Reading a session's message log (`messages.jsonl`, one message per line, line k holding
 * seq k) back after a crash.
 *
 * An append is acknowledged only after its fsync, so a power cut can damage only the
 * unacknowledged end of the log: bytes after the last newline, or a last line that landed
 * as zeros or half-written. That end is the *torn tail*: the service cuts it off (nobody was
 * told it was stored) and goes on with the next dense seq. A line that fails to parse
 * anywhere before the end is damage of another kind: it is never skipped or cut, it makes
 * the session damaged.
 */
import { constants, open, read } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { StorageIntegrityError } from '../errors';
import { closeFd, isErrno } from './durable-fs';
import { parseMessageLine } from './stored-shapes';

const openFd = promisify(open);
const readFd = promisify(read);

const CHUNK_BYTES = 1024 * 1024;
/** Longer than any line the service writes (MAX_MESSAGE_BYTES is far below): kept no further. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

export interface LogScan {
  /** Complete, valid lines that stay: the next append gets seq `lines + 1`. */
  lines: number;
  /** Where the kept lines end: the length to cut the file to when `tornBytes > 0`. */
  keptBytes: number;
  /** Bytes of the torn tail (0 when the log ends cleanly). */
  tornBytes: number;
  /** seq of the first line before the tail that is not a valid message; null when none was seen. */
  damagedSeq: number | null;
}

/**
 * Scans a log with constant memory. With `everyLine` each line is parsed and checked (the
 * data check); without it only the last line is (the service on first use, which parses
 * the other lines when it serves them).
 */
export async function scanMessageLog(file: string, options: { everyLine: boolean }): Promise<LogScan> {
  let fd: number;
  try {
    fd = await openFd(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return { lines: 0, keptBytes: 0, tornBytes: 0, damagedSeq: null };
    if (isErrno(error, 'ELOOP')) throw new StorageIntegrityError(`symbolic link at ${path.basename(file)}`);
    throw error;
  }
  try {
    return await scanDescriptor(fd, options.everyLine);
  } finally {
    await closeFd(fd);
  }
}

async function scanDescriptor(fd: number, everyLine: boolean): Promise<LogScan> {
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let position = 0;
  let lines = 0;
  let damagedSeq: number | null = null;
  // The line being read (its bytes so far, up to MAX_LINE_BYTES), and the last complete one.
  let current: Buffer[] = [];
  let currentBytes = 0;
  let last: { seq: number; start: number; valid: boolean | null } | null = null;
  let lastText: Buffer | null = null;
  let lineStart = 0;

  for (;;) {
    const { bytesRead } = await readFd(fd, buffer, 0, CHUNK_BYTES, position);
    if (bytesRead === 0) break;
    let from = 0;
    for (let nl = buffer.indexOf(0x0a, 0); nl >= 0 && nl < bytesRead; nl = buffer.indexOf(0x0a, from)) {
      if (currentBytes <= MAX_LINE_BYTES) current.push(Buffer.from(buffer.subarray(from, nl)));
      currentBytes += nl - from;
      lines += 1;
      const text = currentBytes <= MAX_LINE_BYTES ? Buffer.concat(current) : null;
      // The line before this one is no longer the last: a bad line there is damage, not a tail.
      if (last?.valid === false && damagedSeq === null) damagedSeq = last.seq;
      const valid = everyLine ? text !== null && parseMessageLine(text, lines) !== null : null;
      last = { seq: lines, start: lineStart, valid };
      lastText = text;
      lineStart = position + nl + 1;
      current = [];
      currentBytes = 0;
      from = nl + 1;
    }
    if (from < bytesRead) {
      if (currentBytes <= MAX_LINE_BYTES) current.push(Buffer.from(buffer.subarray(from, bytesRead)));
      currentBytes += bytesRead - from;
    }
    position += bytesRead;
  }

  let keptBytes = lineStart;
  let tornBytes = position - lineStart;
  if (last) {
    const lastValid = last.valid ?? (lastText !== null && parseMessageLine(lastText, last.seq) !== null);
    if (!lastValid) {
      keptBytes = last.start;
      tornBytes = position - last.start;
      lines -= 1;
    }
  }
  return { lines, keptBytes, tornBytes, damagedSeq };
}
