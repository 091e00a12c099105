/**
 * Baseline: the same bytes an upload sends, written to a file with an fs write stream and
 * fsynced (as an upload is), then read back with an fs read stream; no HTTP. Prints
 * `{"writeSeconds","readSeconds"}`.
 *
 * Usage: raw-disk.ts <file> <megabytes>
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { payloadChunks } from '../payload';

async function main(): Promise<void> {
  const [file, megabytes] = process.argv.slice(2);
  if (!file || !megabytes) throw new Error('usage: raw-disk.ts <file> <megabytes>');
  const bytes = Number(megabytes) * 1024 * 1024;

  let started = performance.now();
  await pipeline(payloadChunks(bytes), createWriteStream(file, { flags: 'wx', flush: true }));
  const writeSeconds = (performance.now() - started) / 1000;

  started = performance.now();
  let read = 0;
  await pipeline(
    createReadStream(file),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        read += chunk.length;
        callback();
      },
    }),
  );
  const readSeconds = (performance.now() - started) / 1000;
  await fs.rm(file);
  if (read !== bytes) throw new Error(`read ${read} bytes of ${bytes}`);
  process.stdout.write(`${JSON.stringify({ writeSeconds, readSeconds })}\n`);
}

void main();
