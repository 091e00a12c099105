/**
 * File bytes as plain files, shared by this folder's two blob stores (FsBlobStore beside the
 * filesystem backend, FlatFsBlobStore beside PostgreSQL): how a put streams into a new file and
 * makes it durable, and how stored bytes are opened for reading. Nothing here ever writes over
 * an existing file, follows a link, or resolves before the bytes are on disk.
 */
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { OpenedBlob } from '../../sessions/ports';
import { CREATE_NOFOLLOW, closeFd, fs, fstatFd, openNoFollow } from './durable-fs';
import { toDomainError } from './fs-errors';

/**
 * How much a file stream buffers ahead: while one write (or read) is with the disk, the next
 * megabyte can arrive from the socket (or leave for it), and is written in one call. Memory
 * per transfer stays bounded by it.
 */
export const FILE_STREAM_BUFFER = 1024 * 1024;
/**
 * A large upload asks the disk to write back what it has every this many bytes, so that
 * most of the file is on disk by the time the final fsync (before the file is acknowledged)
 * runs: the disk works while the network does, instead of after it.
 */
const EARLY_FLUSH_BYTES = 8 * 1024 * 1024;

/**
 * Streams `source` into a new file at `file` and fsyncs it. On failure the file is removed,
 * the source is released (a caller feeding it would otherwise wait for ever) and the error
 * is the domain's.
 */
export async function writeNewBlobFile(file: string, source: Readable): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await fs.open(file, CREATE_NOFOLLOW, 0o600);
  } catch (error) {
    const cause = toDomainError(error);
    source.destroy();
    throw cause;
  }
  let size = 0;
  const earlyFlush = new Transform({
    transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
      if (Math.floor((size + chunk.length) / EARLY_FLUSH_BYTES) > Math.floor(size / EARLY_FLUSH_BYTES)) {
        // Not awaited: the bytes keep flowing, and the final fsync covers everything anyway.
        handle.datasync().catch(() => undefined);
      }
      size += chunk.length;
      callback(null, chunk);
    },
  });
  try {
    // The write stream owns the handle: it fsyncs (`flush`) and closes it before the
    // pipeline settles, and closes it on failure too.
    await pipeline(source, earlyFlush, handle.createWriteStream({ flush: true, highWaterMark: FILE_STREAM_BUFFER }));
  } catch (error) {
    await fs.rm(file, { force: true });
    throw toDomainError(error);
  }
}

/**
 * Opens stored bytes without following a link; null when they are missing. The descriptor
 * belongs to the stream once one is made, so a `close` after streaming can never close a
 * descriptor number the process has since reused for something else.
 */
export async function openBlobFile(file: string): Promise<OpenedBlob | null> {
  const fd = await openNoFollow(file);
  if (fd === null) return null;
  let size: number;
  try {
    ({ size } = await fstatFd(fd));
  } catch (error) {
    await closeFd(fd);
    throw error;
  }
  let owned = true;
  return {
    size,
    stream: (range) => {
      owned = false;
      // A plain descriptor stream: fs.ReadStream's own read path, which serves large files
      // faster than a FileHandle's promise-per-read one.
      return createReadStream('', { fd, ...(range ?? {}), autoClose: true, highWaterMark: FILE_STREAM_BUFFER });
    },
    close: async () => {
      if (!owned) return;
      owned = false;
      await closeFd(fd);
    },
  };
}
