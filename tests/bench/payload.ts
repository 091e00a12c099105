/**
 * The bytes every upload scenario sends: a PNG signature (so the part passes the content
 * check as image/png) followed by random bytes, produced as 64 KiB chunks of one repeated
 * 1 MiB block, so the client spends almost nothing to generate gigabytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const block = randomBytes(MiB);
PNG_SIGNATURE.copy(block, 0);

function* chunks(bytes: number): Generator<Buffer> {
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    const offset = sent % MiB;
    yield block.subarray(offset, offset + Math.min(CHUNK, bytes - sent));
  }
}

export function payloadChunks(bytes: number): Readable {
  return Readable.from(chunks(bytes), { objectMode: false });
}

export function payloadSha256(bytes: number): string {
  const hash = createHash('sha256');
  for (const chunk of chunks(bytes)) hash.update(chunk);
  return hash.digest('hex');
}
