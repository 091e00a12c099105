/**
 * A session's file list on disk: `files.json`, a snapshot (an array of records, replaced
 * atomically), plus `files.jsonl`, a journal of what changed since, one line per commit:
 * `{"add":[record...]}` or `{"del":[id...]}`. An upload or a delete appends one line (one
 * write, one fsync) instead of rewriting the whole list; the journal is folded into a new
 * snapshot once it is longer than the list, so the cost per change stays constant.
 *
 * A batch of files is one line, so it becomes visible whole or not at all. Replaying is
 * idempotent (adding a present id or deleting an absent one changes nothing): a crash
 * between writing a new snapshot and removing the old journal replays that journal onto
 * the snapshot that already holds it, with the same result.
 */
import type { FileRecord } from '../../sessions/ports';
import { readFileNoFollow } from './durable-fs';
import { scanLog } from './message-log';
import { parseFileList, parseFileRecords } from './stored-shapes';

export type JournalEntry = { add: FileRecord[] } | { del: string[] };

export function journalLine(entry: JournalEntry): Buffer {
  return Buffer.from(`${JSON.stringify(entry)}\n`, 'utf8');
}

/** The entry; null when the line parses but is not one, undefined when it does not parse. */
function parseJournalLine(line: Buffer): JournalEntry | null | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 1) return null;
  const { add, del } = value as { add?: unknown; del?: unknown };
  if (add !== undefined) {
    const records = parseFileRecords(add);
    return records && records.length > 0 ? { add: records } : null;
  }
  if (Array.isArray(del) && del.length > 0 && del.every((id) => typeof id === 'string')) return { del: del as string[] };
  return null;
}

/** The records after `entry`, in the order they were committed (a batch in request order). */
export function applyJournalEntry(files: FileRecord[], entry: JournalEntry): FileRecord[] {
  if ('del' in entry) {
    const gone = new Set(entry.del);
    return files.filter((f) => !gone.has(f.id));
  }
  const present = new Set(files.map((f) => f.id));
  return [...files, ...entry.add.filter((f) => !present.has(f.id))];
}

export interface LoadedFileList {
  files: FileRecord[];
  /** Lines in the journal that stay, and where they end (the append position). */
  journalLines: number;
  journalBytes: number;
  /** Bytes of a torn journal tail, to be cut off at `journalBytes`. */
  tornBytes: number;
}

/** The list as snapshot plus journal say; null when either is damaged. */
export async function loadFileList(snapshotFile: string, journalFile: string): Promise<LoadedFileList | null> {
  const data = await readFileNoFollow(snapshotFile);
  const snapshot = data ? parseFileList(data) : [];
  if (!snapshot) return null;
  let files = snapshot;
  const scan = await scanLog(journalFile, {
    everyLine: true,
    check: (line) => {
      const entry = parseJournalLine(line);
      if (entry === undefined) return 'unparseable';
      if (entry === null) return 'invalid';
      files = applyJournalEntry(files, entry);
      return 'valid';
    },
  });
  if (scan.damagedSeq !== null) return null;
  return { files, journalLines: scan.lines, journalBytes: scan.keptBytes, tornBytes: scan.tornBytes };
}
