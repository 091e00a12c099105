/**
 * File bytes under `<data dir>/blobs/<file id>`, for BLOB_STORE=fs beside the PostgreSQL
 * metadata backend. It owns `blobs/` and `blobs/.staging/` and nothing else in the data
 * directory. A put writes into staging, fsyncs, renames into place and fsyncs the directory,
 * so a reader sees a whole blob or none and a crash leaves only staging litter. It never
 * follows a link, never names a file by anything but its server-generated id, and never
 * decides who may read a blob: the metadata backend found the record before a ref got here.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { isValidObjectId } from '../../sessions/ids';
import type { BlobRef, BlobStore, OpenedBlob } from '../../sessions/ports';
import { openBlobFile, writeNewBlobFile } from './blob-files';
import { ensureDirectory, fs, fsyncDirectory, isErrno, isRealDirectory } from './durable-fs';
import { toDomainError } from './fs-errors';

export const BLOBS_DIR = 'blobs';
export const BLOB_STAGING_DIR = '.staging';

export class FlatFsBlobStore implements BlobStore {
  private readonly blobsDir: string;
  private readonly stagingDir: string;

  /** `root` is the data directory: absolute and free of links, as DataPaths requires. */
  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new Error('data root must be absolute');
    this.blobsDir = path.join(root, BLOBS_DIR);
    // Inside blobs/, so the rename that publishes a blob never crosses a filesystem.
    this.stagingDir = path.join(this.blobsDir, BLOB_STAGING_DIR);
  }

  async put(ref: BlobRef, source: Readable): Promise<void> {
    let name: string;
    try {
      name = blobName(ref);
      // Checked on every put, not once: a directory replaced by a link meanwhile is refused.
      await ensureDirectory(this.blobsDir);
      await ensureDirectory(this.stagingDir);
    } catch (error) {
      const cause = toDomainError(error);
      // Whoever feeds the source would otherwise wait for ever for it to be read.
      source.destroy();
      throw cause;
    }
    const staged = path.join(this.stagingDir, name);
    const target = path.join(this.blobsDir, name);
    await writeNewBlobFile(staged, source);
    try {
      await fs.rename(staged, target);
      await fsyncDirectory(this.blobsDir);
    } catch (error) {
      // A put that fails leaves nothing, even a blob whose rename may not survive a crash.
      await Promise.all([fs.rm(staged, { force: true }), fs.rm(target, { force: true })]);
      throw toDomainError(error);
    }
  }

  async open(ref: BlobRef): Promise<OpenedBlob | null> {
    const name = blobName(ref);
    try {
      if (!(await isRealDirectory(this.blobsDir))) return null;
      return await openBlobFile(path.join(this.blobsDir, name));
    } catch (error) {
      throw toDomainError(error);
    }
  }

  /** Idempotent; durable once it resolves, so an outbox that marks the delete done never resurrects bytes. */
  async delete(ref: BlobRef): Promise<void> {
    const name = blobName(ref);
    try {
      if (!(await isRealDirectory(this.blobsDir))) return;
      if (await unlinkIfPresent(path.join(this.blobsDir, name))) await fsyncDirectory(this.blobsDir);
      // Bytes a process put before it died mid-upload: the sweeper deletes them by id.
      if (await isRealDirectory(this.stagingDir)) await unlinkIfPresent(path.join(this.stagingDir, name));
    } catch (error) {
      throw toDomainError(error);
    }
  }

  /**
   * Removes every interrupted put; returns how many. For startup, before serving: a put in
   * flight in another process sharing this directory would lose its staging file (and fail,
   * leaving nothing), so call it only where no other process writes blobs here.
   */
  /** Readiness: a file can be created in staging now (the directory exists, is writable, has room). */
  async ready(): Promise<boolean> {
    const probe = path.join(this.stagingDir, `ready-${randomUUID()}`);
    try {
      await ensureDirectory(this.blobsDir);
      await ensureDirectory(this.stagingDir);
      await fs.writeFile(probe, 'ok', { flag: 'wx', mode: 0o600 });
      return true;
    } catch {
      return false;
    } finally {
      await fs.rm(probe, { force: true }).catch(() => undefined);
    }
  }

  async clearStaging(): Promise<number> {
    try {
      if (!(await isRealDirectory(this.stagingDir))) return 0;
      const names = await fs.readdir(this.stagingDir);
      await Promise.all(names.map((name) => fs.rm(path.join(this.stagingDir, name), { recursive: true, force: true })));
      return names.length;
    } catch (error) {
      throw toDomainError(error);
    }
  }
}

/** The file id is the whole name: server-generated, so anything else is a caller's bug. */
function blobName(ref: BlobRef): string {
  if (!isValidObjectId(ref.fileId)) throw new Error('invalid file id');
  return ref.fileId;
}

async function unlinkIfPresent(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}
