/**
 * What a stored file must look like to be served. Everything read back from disk passes
 * through here: bytes that do not parse, or parse to the wrong shape (a cut document, a torn
 * log line, a file list a backup tool mangled), are reported as `null`, never thrown as a
 * SyntaxError that would take a whole user's requests down with it.
 */
import type { FileRecord, JsonObject, SessionDocument, StoredMessage } from '../../sessions/ports';
import { isValidObjectId } from '../../sessions/ids';

/**
 * The largest JSON text the service ever stores in one document or log line: configuration
 * allows at most 64 MiB of state or of message content and metadata, plus the fields around
 * them. Anything longer was not written by the service.
 */
export const LARGEST_STORED_JSON_BYTES = 64 * 1024 * 1024 + 64 * 1024;

/**
 * How a stored line reads back: `unparseable` is what a torn write leaves (half a line,
 * zeros); `invalid` parses but is not what belongs there, which no torn write produces.
 */
export type LineVerdict = 'valid' | 'unparseable' | 'invalid';

function parseJson(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isTimestamp(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

/** A session document stored for `sessionId`, or null when it is damaged. */
export function parseSessionDocument(data: Buffer, sessionId: string): SessionDocument | null {
  const value = parseJson(data);
  if (
    isObject(value) &&
    value.id === sessionId &&
    typeof value.title === 'string' &&
    isTimestamp(value.createdAt) &&
    isTimestamp(value.updatedAt) &&
    Number.isSafeInteger(value.version) &&
    (value.version as number) >= 1 &&
    isObject(value.state)
  ) {
    return value as unknown as SessionDocument;
  }
  return null;
}

/** One line of a message log (without its newline) that must hold `seq`, or null. */
export function parseMessageLine(line: Buffer, seq: number): StoredMessage | null {
  const value = parseJson(line);
  return isMessage(value, seq) ? (value as StoredMessage) : null;
}

export function messageLineVerdict(line: Buffer, seq: number): LineVerdict {
  const value = parseJson(line);
  if (value === undefined) return 'unparseable';
  return isMessage(value, seq) ? 'valid' : 'invalid';
}

function isMessage(value: unknown, seq: number): boolean {
  return (
    isObject(value) &&
    value.seq === seq &&
    isValidObjectId(value.id) &&
    typeof value.role === 'string' &&
    typeof value.content === 'string' &&
    isObject(value.metadata) &&
    isTimestamp(value.createdAt)
  );
}

function isFileRecord(value: unknown): value is FileRecord {
  return (
    isObject(value) &&
    isValidObjectId(value.id) &&
    typeof value.name === 'string' &&
    Number.isSafeInteger(value.size) &&
    (value.size as number) >= 0 &&
    typeof value.contentType === 'string' &&
    typeof value.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(value.sha256) &&
    isTimestamp(value.createdAt)
  );
}

/** File records, or null when `value` is not an array of them (ids unique). */
export function parseFileRecords(value: unknown): FileRecord[] | null {
  if (!Array.isArray(value) || !value.every(isFileRecord)) return null;
  return new Set(value.map((f) => f.id)).size === value.length ? value : null;
}

/** A session's file list snapshot, or null when it is damaged. */
export function parseFileList(data: Buffer): FileRecord[] | null {
  return parseFileRecords(parseJson(data));
}
