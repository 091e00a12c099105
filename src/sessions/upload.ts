/**
 * One multipart request's files, as the domain receives them: each part's name and type are
 * checked, its first bytes inspected, every chunk admitted against the quota before it is
 * passed on, its size and SHA-256 measured on the way, and its bytes put in the blob store
 * under a fresh id. Only `commit` makes the files visible, all together, by recording them
 * in the metadata backend; a refused, failed or aborted upload leaves no bytes and holds no
 * quota. Nothing is buffered whole: memory stays flat whatever the file size.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, NotFound, UnsupportedMediaType } from '../errors';
import { newObjectId } from './ids';
import type { BlobRef, BlobStore, FileRecord, UploadQuota } from './ports';
import { ContentInspector, normalizeContentType, sanitizeFileName } from './upload-rules';

interface Received {
  record: FileRecord;
  order: number;
}

export class Upload {
  private parts = 0;
  /** Files whose bytes are stored, in request order whatever order they finish in. */
  private readonly received: Received[] = [];
  /** Every file put in the blob store, stored or failed, so none outlives a failed upload. */
  private readonly refs: BlobRef[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly userId: string,
    private readonly sessionId: string,
    private readonly quota: UploadQuota,
    private readonly blobs: BlobStore,
    private readonly allowedTypes: string[],
    private readonly now: () => Date,
  ) {}

  addFile(source: NodeJS.ReadableStream, declared: { filename: string | undefined; mimeType: string | undefined }): Promise<FileRecord> {
    if (this.closed) return Promise.reject(new Error('upload already finished'));
    this.parts += 1;
    const name = sanitizeFileName(declared.filename);
    const contentType = normalizeContentType(declared.mimeType);
    const label = `Part ${this.parts} ("${name}")`;
    if (!this.allowedTypes.includes(contentType)) {
      return Promise.reject(new UnsupportedMediaType(`${label}: ${contentType} is not an accepted type.`));
    }
    const work = this.receive(source, { name, contentType }, new ContentInspector(contentType, label), this.parts);
    this.inFlight.add(work);
    const settle = () => this.inFlight.delete(work);
    work.then(settle, settle);
    return work;
  }

  /** Records every stored file at once; a 404 (and nothing kept) if the session went meanwhile. */
  async commit(): Promise<FileRecord[]> {
    await Promise.allSettled(this.inFlight);
    this.closed = true;
    let committed: FileRecord[] | null;
    try {
      committed = await this.quota.commit(this.received.map((r) => r.record));
    } catch (error) {
      await this.finish();
      throw error;
    }
    if (!committed) {
      await this.finish();
      throw new NotFound('No such session.');
    }
    this.refs.length = 0;
    await this.quota.release();
    return committed;
  }

  async abort(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.inFlight);
    await this.finish();
  }

  private async receive(
    source: NodeJS.ReadableStream,
    meta: { name: string; contentType: string },
    inspector: ContentInspector,
    order: number,
  ): Promise<FileRecord> {
    const ref: BlobRef = { userId: this.userId, sessionId: this.sessionId, fileId: newObjectId() };
    const share = await this.quota.admitFile(ref.fileId);
    this.refs.push(ref);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        const admitted = (): void => {
          hash.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        };
        try {
          const growing = share.grow(chunk.length);
          if (growing) growing.then(admitted, callback);
          else admitted();
        } catch (error) {
          callback(error as Error);
        }
      },
    });
    // The client's bytes flow through the checks and the meter into the blob store, which
    // resolves once they are durable. A refusal anywhere destroys the chain, which fails the put.
    const storing = this.blobs.put(ref, meter).catch((error: unknown) => {
      // A store that gave up reads no more: stop the client's bytes too, or they would wait for ever.
      meter.destroy(error instanceof Error ? error : new Error(String(error)));
      throw error;
    });
    const [received, stored] = await Promise.allSettled([pipeline(source, inspector, meter), storing]);
    if (received.status === 'rejected' || stored.status === 'rejected') {
      await share.cancel();
      throw chooseCause(received, stored);
    }
    const record: FileRecord = {
      id: ref.fileId,
      name: meta.name,
      size,
      contentType: meta.contentType,
      sha256: hash.digest('hex'),
      createdAt: this.now().toISOString(),
    };
    // An abort waits for parts in flight before it removes what is stored, so this part is
    // removed too if the upload was aborted while it was being received.
    this.received.push({ record, order });
    this.received.sort((a, b) => a.order - b.order);
    return record;
  }

  /** Removes every stored byte of the upload and gives back what it holds. */
  private async finish(): Promise<void> {
    const refs = this.refs.splice(0);
    this.received.length = 0;
    await Promise.allSettled(refs.map((ref) => this.blobs.delete(ref)));
    await this.quota.release();
  }
}

/**
 * Why a part failed, as the client should hear it: the domain's own refusal (quota, type,
 * size, a client that went away) over the store's reaction to it (a destroyed stream), and
 * a store failure (no space) over a receiving side that only saw the store give up.
 */
function chooseCause(received: PromiseSettledResult<unknown>, stored: PromiseSettledResult<unknown>): unknown {
  const receivedError = received.status === 'rejected' ? (received.reason as unknown) : undefined;
  const storedError = stored.status === 'rejected' ? (stored.reason as unknown) : undefined;
  if (receivedError instanceof AppError) return receivedError;
  if (storedError instanceof AppError) return storedError;
  return receivedError ?? storedError;
}
