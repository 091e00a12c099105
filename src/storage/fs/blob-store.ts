/**
 * File bytes on the filesystem. A put streams into the staging directory and fsyncs before
 * it resolves; the bytes move to `sessions/<user>/<session>/files/<id>` only when the file
 * list commits them (FsBackend.commitUpload renames them in), so a crash never leaves bytes
 * that look committed. Reads open the file without following a link.
 */
import type { Readable } from 'node:stream';
import type { BlobRef, BlobStore, OpenedBlob } from '../../sessions/ports';
import { openBlobFile, writeNewBlobFile } from './blob-files';
import { fs, isRealDirectory } from './durable-fs';
import { toDomainError } from './fs-errors';
import { FILES_DIR, type DataPaths } from './paths';

export class FsBlobStore implements BlobStore {
  constructor(private readonly paths: DataPaths) {}

  async put(ref: BlobRef, source: Readable): Promise<void> {
    await writeNewBlobFile(this.paths.stagedBlob(ref.fileId), source);
  }

  async open(ref: BlobRef): Promise<OpenedBlob | null> {
    try {
      if (!(await isRealDirectory(this.paths.sessionFile(ref.userId, ref.sessionId, FILES_DIR)))) return null;
      return await openBlobFile(this.paths.fileBlob(ref.userId, ref.sessionId, ref.fileId));
    } catch (error) {
      throw toDomainError(error);
    }
  }

  async delete(ref: BlobRef): Promise<void> {
    await fs.rm(this.paths.stagedBlob(ref.fileId), { force: true });
  }
}
