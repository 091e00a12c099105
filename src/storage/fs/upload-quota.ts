/**
 * An upload's reservation on the filesystem backend, kept in the user's index in this
 * process's memory: one process owns a data directory (data-lock.ts), so admitting a file or
 * a chunk and reserving it happen in one synchronous step that no other request can
 * interleave with, which makes quota and the session's file count exact. (A backend shared by
 * several processes persists its reservations instead; see ports.ts.) The index stays pinned,
 * never evicted, until the reservation is released, so the reservation is never lost.
 */
import { FILE_OVERHEAD_BYTES, type Admit, type AdmitFile, type FileQuota, type FileRecord, type UploadQuota } from '../../sessions/ports';
import type { SessionIndex } from './session-index';

export class FsUploadQuota implements UploadQuota {
  private reserved = 0;
  private reservedFiles = 0;
  private released = false;

  constructor(
    private readonly index: SessionIndex,
    private readonly sessionId: string,
    private readonly admission: { admit: Admit; admitFile: AdmitFile },
    private readonly commitFiles: (files: FileRecord[]) => Promise<FileRecord[] | null>,
  ) {
    index.pin();
  }

  /** The file id is not kept: this process's staging is emptied at the next start anyway. */
  admitFile(_fileId: string): Promise<FileQuota> {
    if (this.released) return Promise.reject(new Error('upload already finished'));
    try {
      // From the count to the reservation without an await: no other part can slip in between.
      this.admission.admitFile(this.index.filesInSession(this.sessionId));
      this.admission.admit(this.index.usageWithReservations(), FILE_OVERHEAD_BYTES);
    } catch (error) {
      return Promise.reject(error);
    }
    this.index.reserveFiles(this.sessionId, 1);
    this.reservedFiles += 1;
    let held = 0;
    let cancelled = false;
    const hold = (bytes: number) => {
      this.index.reserve(bytes);
      this.reserved += bytes;
      held += bytes;
    };
    hold(FILE_OVERHEAD_BYTES);
    return Promise.resolve({
      grow: (bytes: number) => {
        this.admission.admit(this.index.usageWithReservations(), bytes);
        hold(bytes);
      },
      cancel: () => {
        if (cancelled || this.released) return;
        cancelled = true;
        this.index.release(held);
        this.reserved -= held;
        this.index.reserveFiles(this.sessionId, -1);
        this.reservedFiles -= 1;
      },
    });
  }

  commit(files: FileRecord[]): Promise<FileRecord[] | null> {
    if (this.released) return Promise.reject(new Error('upload already finished'));
    return this.commitFiles(files);
  }

  release(): Promise<void> {
    if (!this.released) {
      this.released = true;
      this.index.release(this.reserved);
      this.reserved = 0;
      this.index.reserveFiles(this.sessionId, -this.reservedFiles);
      this.reservedFiles = 0;
      this.index.unpin();
    }
    return Promise.resolve();
  }
}
