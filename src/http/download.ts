/**
 * Serving a stored file to a browser so it can never run as active content: always an
 * attachment, never a type a browser would render as a document or script, a sandboxing
 * CSP, and a file name that cannot break out of its header. Ranges let large files resume.
 */
import { encodeExtended } from 'content-disposition';
import type { Response } from 'express';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FileRecord } from '../sessions/session-store';

/** Types a browser could execute or render as a document are served as opaque bytes. */
const ACTIVE_TYPE = /html|xml|svg|javascript|ecmascript|x-sh|wasm/;

export function servedContentType(stored: string): string {
  return ACTIVE_TYPE.test(stored) ? 'application/octet-stream' : stored;
}

function asciiFallback(name: string): string {
  // Names are already free of control characters; quotes and backslashes would end or
  // escape the quoted string, non-ASCII is not allowed in it.
  return name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
}

/**
 * `attachment`, an ASCII fallback name always quoted, and the exact name in `filename*`,
 * encoded (RFC 8187) by `content-disposition`, the module behind Express's `res.attachment`.
 * Its `create()` is not used for the whole header: it writes a name that is a token unquoted
 * and gives an ASCII name no `filename*`, and it escapes a quote in the fallback where ours
 * replaces it; the one shape for every name is what the README promises
 * (tests/unit/download-headers.test.ts shows the differences).
 */
export function contentDisposition(name: string): string {
  return `attachment; filename="${asciiFallback(name)}"; filename*=${encodeExtended(name)}`;
}

export function fileEtag(record: Pick<FileRecord, 'sha256'>): string {
  return `"sha256-${record.sha256}"`;
}

export type RangeRequest = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * One `bytes=` range (RFC 9110; the unit is case-insensitive). Several ranges, or a header
 * that does not parse, are ignored and the whole file is sent, as the RFC allows.
 *
 * Not `range-parser` (Express's `req.range()`): it refuses a suffix longer than the file
 * (`bytes=-5000` of 1000 bytes) where RFC 9110 14.1.2 serves the whole file, and answers an
 * unknown unit, a reversed range or a list with a satisfiable member differently from what
 * the README promises (tests/unit/download-headers.test.ts shows each case).
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'full' };
  const match = /^bytes=(\d{0,15})-(\d{0,15})$/i.exec(header.trim());
  if (!match) return { kind: 'full' };
  const [, first, last] = match;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return { kind: 'partial', start, end };
}

/**
 * Streams `source` as the body. A client that goes away mid-download is not an error of
 * ours: the file is closed and nothing is reported.
 */
export async function sendBody(res: Response, source: Readable): Promise<void> {
  try {
    await pipeline(source, res);
  } catch (error) {
    if (res.destroyed && !res.writableFinished) return;
    throw error;
  }
}
