/**
 * Receiving and serving file bytes on the filesystem.
 *
 * An upload part is streamed into the staging directory while its SHA-256 and size are
 * computed. Before its first byte the part is admitted against the session's file limit
 * and charged its fixed overhead; every chunk is then admitted against the user's quota.
 * Both are reserved while in flight, so concurrent uploads cannot together exceed them. Nothing is buffered whole:
 * memory stays flat whatever the file size. A part becomes visible only when the batch
 * commits; a failed or aborted batch removes every staged part and releases its reservation.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FILE_OVERHEAD_BYTES, type Admit, type AdmitFile, type FileRecord, type OpenedFile, type UploadBatch } from './backend';
import { CREATE_NOFOLLOW, closeFd, fs, fstatFd, openNoFollow } from './durable-fs';
import { newObjectId, type DataPaths } from './paths';
import type { SessionIndex } from './session-index';

export interface StagedFile {
  record: FileRecord;
  stagingPath: string;
}

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

export class FsUploadBatch implements UploadBatch {
  /** In request order, whatever order the parts finish in. */
  private readonly staged: Array<StagedFile & { order: number }> = [];
  private parts = 0;
  private readonly inFlight = new Set<Promise<unknown>>();
  private reserved = 0;
  private reservedFiles = 0;
  private closed = false;
  private released = false;

  /** The index stays pinned (never evicted) until the batch commits or aborts. */
  constructor(
    private readonly paths: DataPaths,
    private readonly index: SessionIndex,
    private readonly sessionId: string,
    private readonly admission: { admit: Admit; admitFile: AdmitFile },
    private readonly now: () => Date,
    private readonly commitStaged: (staged: StagedFile[]) => Promise<FileRecord[] | null>,
  ) {
    index.pin();
  }

  stage(
    source: NodeJS.ReadableStream,
    meta: { name: string; contentType: string },
    checks: NodeJS.ReadWriteStream[],
  ): Promise<FileRecord> {
    if (this.closed) return Promise.reject(new Error('upload already finished'));
    const work = this.receive(source, meta, checks, this.parts++);
    this.inFlight.add(work);
    const settle = () => this.inFlight.delete(work);
    work.then(settle, settle);
    return work;
  }

  async commit(): Promise<FileRecord[] | null> {
    await Promise.allSettled(this.inFlight);
    this.closed = true;
    try {
      const committed = await this.commitStaged(this.staged);
      if (committed === null) await this.removeStaged();
      else this.staged.length = 0;
      return committed;
    } catch (error) {
      await this.removeStaged();
      throw error;
    } finally {
      this.releaseAll();
    }
  }

  async abort(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.inFlight);
    await this.removeStaged();
    this.releaseAll();
  }

  private async receive(
    source: NodeJS.ReadableStream,
    meta: { name: string; contentType: string },
    checks: NodeJS.ReadWriteStream[],
    order: number,
  ): Promise<FileRecord> {
    const stagingPath = this.paths.stagingEntry();
    const hash = createHash('sha256');
    let size = 0;
    // Synchronous from the count to the reservation: no other part can slip in between.
    this.admission.admitFile(this.index.filesInSession(this.sessionId));
    this.admission.admit(this.index.usageWithReservations(), FILE_OVERHEAD_BYTES);
    this.index.reserveFiles(this.sessionId, 1);
    this.reservedFiles += 1;
    this.index.reserve(FILE_OVERHEAD_BYTES);
    let reservedHere = FILE_OVERHEAD_BYTES;
    const handle = await fs.open(stagingPath, CREATE_NOFOLLOW, 0o600).catch((error: unknown) => {
      this.index.release(reservedHere);
      this.releaseFiles(1);
      throw error;
    });
    const meter = new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        try {
          this.admission.admit(this.index.usageWithReservations(), chunk.length);
        } catch (error) {
          callback(error as Error);
          return;
        }
        this.index.reserve(chunk.length);
        reservedHere += chunk.length;
        hash.update(chunk);
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
      await pipeline([source, ...checks, meter, handle.createWriteStream({ flush: true, highWaterMark: FILE_STREAM_BUFFER })]);
    } catch (error) {
      await fs.rm(stagingPath, { force: true });
      this.index.release(reservedHere);
      this.releaseFiles(1);
      throw error;
    }
    this.reserved += reservedHere;
    const record: FileRecord = {
      id: newObjectId(),
      name: meta.name,
      size,
      contentType: meta.contentType,
      sha256: hash.digest('hex'),
      createdAt: this.now().toISOString(),
    };
    // An abort waits for parts in flight before it removes what is staged, so this part is
    // removed too if the batch was aborted while it was being written.
    this.staged.push({ record, stagingPath, order });
    this.staged.sort((a, b) => a.order - b.order);
    return record;
  }

  private async removeStaged(): Promise<void> {
    const staged = this.staged.splice(0);
    await Promise.all(staged.map((f) => fs.rm(f.stagingPath, { force: true })));
  }

  private releaseFiles(count: number): void {
    this.index.reserveFiles(this.sessionId, -count);
    this.reservedFiles -= count;
  }

  private releaseAll(): void {
    if (this.released) return;
    this.released = true;
    this.index.release(this.reserved);
    this.reserved = 0;
    this.releaseFiles(this.reservedFiles);
    this.index.unpin();
  }
}

/** Opens a stored file without following a link; null when its bytes are missing. */
export async function openBlob(file: string, record: FileRecord): Promise<OpenedFile | null> {
  const fd = await openNoFollow(file);
  if (fd === null) return null;
  const { size } = await fstatFd(fd);
  return {
    record,
    size,
    // A plain descriptor stream: fs.ReadStream's own read path, which serves large files
    // faster than a FileHandle's promise-per-read one.
    stream: (range) => createReadStream('', { fd, ...(range ?? {}), autoClose: true, highWaterMark: FILE_STREAM_BUFFER }),
    close: () => closeFd(fd),
  };
}
