/**
 * Builds multipart/form-data bodies byte by byte, so tests can send what a browser sends
 * and also what no browser would: raw file names, truncated bodies, stray fields.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Readable } from 'node:stream';

export interface Part {
  /** Defaults to `file`. */
  field?: string;
  /** The raw `filename` parameter, quoted as given; omitted for a plain field. */
  filename?: string;
  /** An RFC 5987 `filename*` parameter, already percent-encoded. */
  filenameStar?: string;
  contentType?: string;
  data: Buffer | string;
}

export interface Multipart {
  contentType: string;
  body: Buffer;
}

export function multipart(parts: Part[], options: { truncate?: boolean } = {}): Multipart {
  const boundary = `----sv-test-${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let disposition = `form-data; name="${part.field ?? 'file'}"`;
    if (part.filename !== undefined) disposition += `; filename="${part.filename}"`;
    if (part.filenameStar !== undefined) disposition += `; filename*=UTF-8''${part.filenameStar}`;
    let head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n`;
    if (part.contentType !== undefined) head += `Content-Type: ${part.contentType}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`, 'utf8'), Buffer.from(part.data), Buffer.from('\r\n'));
  }
  if (!options.truncate) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: Buffer.concat(chunks) };
}

/** One file part with a name and type, the common case. */
export function filePart(filename: string, contentType: string, data: Buffer | string): Part {
  return { filename, contentType, data };
}

/** Small but real file heads, enough for the signature checks. */
export const SAMPLES = {
  csv: Buffer.from('name,amount\nalice,10\nbob,20\n'),
  png: Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(200)]),
  jpeg: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(100)]),
  gif: Buffer.concat([Buffer.from('GIF89a'), randomBytes(50)]),
  webp: Buffer.concat([Buffer.from('RIFF'), Buffer.from([0, 0, 0, 0]), Buffer.from('WEBPVP8 '), randomBytes(50)]),
  pdf: Buffer.from('%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n'),
  elf: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(120)]),
  pe: Buffer.concat([Buffer.from('MZ'), Buffer.alloc(62), Buffer.from('PE\0\0'), Buffer.alloc(100)]),
  machO: Buffer.concat([Buffer.from([0xcf, 0xfa, 0xed, 0xfe]), Buffer.alloc(60)]),
  shebang: Buffer.from('#!/bin/sh\nrm -rf /\n'),
};

/**
 * Streams `source` (`bytes` long) to `url` as a single `file` part with http.request, so a
 * file of any size is sent without ever being held in memory. Resolves with the answer.
 */
export function streamFilePart(
  url: string,
  headers: Record<string, string>,
  part: { filename: string; contentType: string },
  source: Readable,
  bytes: number,
): Promise<{ status: number; body: string }> {
  const boundary = `----sv-test-${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${part.filename}"\r\nContent-Type: ${part.contentType}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: {
        ...headers,
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': String(head.length + bytes + tail.length),
      },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.write(head);
    source.on('end', () => req.end(tail));
    source.pipe(req, { end: false });
  });
}
