/**
 * File bytes on the filesystem. A put streams into the staging directory and fsyncs before
 * it resolves; the bytes move to `sessions/<user>/<session>/files/<id>` only when the file
 * list commits them (FsBackend.commitUpload renames them in), so a crash never leaves bytes
 * that look committed. Reads open the file without following a link.
 */
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobRef, BlobStore, OpenedBlob } from '../../sessions/ports';
import { CREATE_NOFOLLOW, closeFd, fs, fstatFd, isRealDirectory, openNoFollow } from './durable-fs';
import { toDomainError } from './fs-errors';
import { FILES_DIR, type DataPaths } from './paths';

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

export class FsBlobStore implements BlobStore {
  constructor(private readonly paths: DataPaths) {}

  async put(ref: BlobRef, source: NodeJS.ReadableStream): Promise<void> {
    const stagingPath = this.paths.stagedBlob(ref.fileId);
    const handle = await fs.open(stagingPath, CREATE_NOFOLLOW, 0o600).catch((error: unknown) => {
      throw toDomainError(error);
    });
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
      await fs.rm(stagingPath, { force: true });
      throw toDomainError(error);
    }
  }

  async open(ref: BlobRef): Promise<OpenedBlob | null> {
    try {
      if (!(await isRealDirectory(this.paths.sessionFile(ref.userId, ref.sessionId, FILES_DIR)))) return null;
      return await openBlob(this.paths.fileBlob(ref.userId, ref.sessionId, ref.fileId));
    } catch (error) {
      throw toDomainError(error);
    }
  }

  async delete(ref: BlobRef): Promise<void> {
    await fs.rm(this.paths.stagedBlob(ref.fileId), { force: true });
  }
}

/** Opens stored bytes without following a link; null when they are missing. */
async function openBlob(file: string): Promise<OpenedBlob | null> {
  const fd = await openNoFollow(file);
  if (fd === null) return null;
  const { size } = await fstatFd(fd);
  return {
    size,
    // A plain descriptor stream: fs.ReadStream's own read path, which serves large files
    // faster than a FileHandle's promise-per-read one.
    stream: (range) => createReadStream('', { fd, ...(range ?? {}), autoClose: true, highWaterMark: FILE_STREAM_BUFFER }),
    close: () => closeFd(fd),
  };
}
