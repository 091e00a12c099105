/**
 * File bytes in any S3-compatible object store (AWS S3, MinIO, R2, Ceph RGW; s3rver in
 * tests), for the PostgreSQL backend. The only module that talks to the bucket: it owns the
 * object key layout, the client's timeouts and the translation of the store's failures.
 *
 * It never buffers a file whole (a put holds a few parts, a read a stream's buffer), never
 * leaves an object or a multipart upload behind a put that failed, never puts a user's file
 * name, user id or session id into a key, and never decides who may read a file: the
 * metadata backend found the file's record, under row-level security, before a ref got here.
 */
import { PassThrough, Readable, Transform, finished, pipeline, type TransformCallback } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  S3Client,
  type BucketLocationConstraint,
  type GetObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { isValidObjectId } from '../../sessions/ids';
import type { BlobRef, BlobStore, OpenedBlob } from '../../sessions/ports';
import { httpStatusOf, toDomainError, toDomainStreamError } from './s3-errors';

export interface S3Settings {
  /** A non-AWS endpoint (MinIO, R2, s3rver); the SDK's regional AWS endpoint when unset. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Both or neither: without them the SDK's default chain (environment, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
  /** Bytes per multipart part, at least S3's minimum of 5 MiB. */
  partSize: number;
}

/** S3 refuses smaller parts (all but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/**
 * Parts of one put in flight at once. A put holds these parts, the one being filled and
 * lib-storage's copy as it cuts a part: about (QUEUE_SIZE + 2) x partSize live, whatever the
 * file size (measured on s3rver: peak buffers about 8 x partSize counting garbage not yet
 * collected, the same for 64 MiB and 1 GiB files).
 */
export const QUEUE_SIZE = 2;
/**
 * Every object this store writes lives under this prefix, named by the file id alone. File
 * ids are fresh random UUIDs per upload and never reused, so the id is a unique key and a
 * late delete (from the outbox, after a retry) can never hit a newer file. Nothing the user
 * chose (a file name, a user id from a token) reaches the key: bucket listings, access logs
 * and replication reports name no user data, and no user-supplied string needs escaping.
 */
const KEY_PREFIX = 'files/';

/** A store that does not accept a connection in this long is unreachable. */
const CONNECT_TIMEOUT_MS = 5_000;
/**
 * A connection with no traffic for this long is cut: a hung store fails a put or a read
 * instead of holding it (and the client) for ever. A download whose client stops reading
 * for longer than this is cut too.
 */
const SOCKET_IDLE_TIMEOUT_MS = 120_000;
/** Readiness answers within this, reachable or not: a probe must not hang on a hung store. */
export const READY_TIMEOUT_MS = 2_000;
/** Removing what a failed put left gives up after this; a bucket lifecycle rule is the backstop. */
const CLEANUP_TIMEOUT_MS = 15_000;

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly region: string;
  private readonly partSize: number;

  constructor(settings: S3Settings) {
    // Messages name the setting, never its value: they end up in logs.
    if (!Number.isSafeInteger(settings.partSize) || settings.partSize < MIN_PART_SIZE) {
      throw new Error('S3 part size must be a whole number of bytes, at least 5 MiB');
    }
    if ((settings.accessKeyId === undefined) !== (settings.secretAccessKey === undefined)) {
      throw new Error('S3 access key id and secret access key go together, or neither is set');
    }
    this.bucket = settings.bucket;
    this.region = settings.region;
    this.partSize = settings.partSize;
    // On Node 20 the SDK warns, once per process, that its releases after early January 2027
    // need Node 22. This service pins a release that supports Node 20 on purpose, so the
    // warning asks for nothing an operator can act on here and only adds noise to every log.
    // AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true is the SDK's own switch for it
    // (read by @aws-sdk/core when a client is created; announced in aws/aws-sdk-js-v3#7983).
    // An operator who set it either way keeps that choice.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint,
      forcePathStyle: settings.forcePathStyle,
      credentials:
        settings.accessKeyId !== undefined && settings.secretAccessKey !== undefined
          ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey }
          : undefined,
      // Checksums only where S3 demands them: s3rver stores streamed (aws-chunked) uploads
      // wrongly otherwise, and AWS S3 accepts either.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: SOCKET_IDLE_TIMEOUT_MS },
    });
  }

  /**
   * Streams `source` to the object in parts of `partSize`, QUEUE_SIZE of them in flight; a
   * file of one part or less is a single PUT. Resolves once S3 has stored the object.
   */
  async put(ref: BlobRef, source: Readable): Promise<void> {
    let key: string | undefined;
    let upload: Upload | undefined;
    try {
      key = objectKey(ref);
      upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: key, Body: source },
        partSize: this.partSize,
        queueSize: QUEUE_SIZE,
        // This store cleans up itself (below): lib-storage's own abort would replace the
        // cause with the abort's failure, and never removes an object that the final request
        // stored although its answer was lost.
        leavePartsOnError: true,
      });
      // lib-storage settles only after every part in flight has settled, so once this
      // rejects nothing more is being added to the multipart upload.
      await upload.done();
    } catch (error) {
      const cause = toDomainError(error);
      // A store that gave up reads no more: release the source at once, or whoever feeds it
      // would wait for ever (the domain's meter, the client's request).
      source.destroy();
      if (key !== undefined) await this.removeRemains(key, upload?.uploadId);
      throw cause;
    }
  }

  /**
   * Starts reading the whole object at once: the common case (a full download) costs one
   * round trip, and a missing object is known before the caller sends any header.
   */
  async open(ref: BlobRef): Promise<OpenedBlob | null> {
    const key = objectKey(ref);
    let response: GetObjectCommandOutput;
    try {
      response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isNoSuchKey(error)) return null;
      throw toDomainError(error);
    }
    const body = bodyOf(response);
    // Until someone streams it, nobody listens for the body's failure, and an unheard stream
    // error would end the process; relay's finished() still reports it when asked to stream.
    body.on('error', () => undefined);
    const size = response.ContentLength;
    if (size === undefined) {
      body.destroy();
      throw new Error('the object store sent no length for an object');
    }
    let whole: Readable | undefined = body;
    return {
      size,
      stream: (range) => {
        const started = whole;
        whole = undefined;
        if (started !== undefined && (range === undefined || (range.start === 0 && range.end === size - 1))) {
          return relay(started, new PassThrough());
        }
        // A part was asked for: the whole-object response would carry bytes nobody wants.
        started?.destroy();
        return this.read(key, range);
      },
      close: async () => {
        // Destroying an unread response closes its connection; left alone it would hold a
        // pooled socket until the idle timeout, and a burst of HEADs would starve the pool.
        whole?.destroy();
        whole = undefined;
      },
    };
  }

  async delete(ref: BlobRef): Promise<void> {
    const key = objectKey(ref);
    try {
      // S3 answers a missing key like a deleted one, so this is idempotent as it stands.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      throw toDomainError(error);
    }
  }

  /** True when the bucket answers (HeadBucket) within READY_TIMEOUT_MS; never throws. */
  async ready(): Promise<boolean> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The abort frees the connection; the race bounds the answer even while the SDK waits
    // between retries.
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve(false);
      }, READY_TIMEOUT_MS);
    });
    const answered = this.client
      .send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: controller.signal })
      .then(
        () => true,
        () => false,
      );
    try {
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Creates the bucket if it does not exist (development and tests; production buckets are
   * provisioned, and the service's credentials usually may not create one).
   */
  async ensureBucket(): Promise<void> {
    if (await this.bucketExists()) return;
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          // us-east-1 is the default location and S3 refuses it named explicitly.
          CreateBucketConfiguration:
            this.region === 'us-east-1' ? undefined : { LocationConstraint: this.region as BucketLocationConstraint },
        }),
      );
    } catch (error) {
      // Another process may have created it meanwhile (BucketAlreadyOwnedByYou; s3rver says
      // BucketAlreadyExists, which on AWS means someone else's): fine if it is ours now.
      if (await this.bucketExists().catch(() => false)) return;
      throw toDomainError(error);
    }
  }

  /** Lets go of the client's pooled connections; the store is unusable afterwards. */
  close(): void {
    this.client.destroy();
  }

  private async bucketExists(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return true;
    } catch (error) {
      if (httpStatusOf(error) === 404) return false;
      throw toDomainError(error);
    }
  }

  /** A fresh GET of the object or a range of it, as a stream that is returned at once. */
  private read(key: string, range: { start: number; end: number } | undefined): Readable {
    const out = new PassThrough();
    const controller = new AbortController();
    // A consumer that gives up before the answer arrives cancels the request.
    out.once('close', () => controller.abort());
    this.client
      .send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range && `bytes=${range.start}-${range.end}` }),
        { abortSignal: controller.signal },
      )
      .then(
        (response) => {
          const body = bodyOf(response);
          if (range === undefined) {
            relay(body, out);
            return;
          }
          const served = servedRange(response);
          if (served.start > range.start || served.end < range.end) {
            body.destroy();
            out.destroy(new Error('the object store answered a range with other bytes than were asked for'));
            return;
          }
          const exact = served.start === range.start && served.end === range.end;
          relay(exact ? body : cut(body, range.start - served.start, range.end - range.start + 1), out);
        },
        (error: unknown) => {
          if (!out.destroyed) out.destroy(toDomainStreamError(error));
        },
      );
    return out;
  }

  /**
   * Best effort, both at once: the multipart upload's parts, and an object that the final
   * request may have stored although its answer never came back.
   */
  private async removeRemains(key: string, uploadId: string | undefined): Promise<void> {
    const abortSignal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
    await Promise.allSettled([
      uploadId === undefined
        ? undefined
        : this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), { abortSignal }),
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
    ]);
  }
}

function objectKey(ref: BlobRef): string {
  // Server-generated, so anything else is a caller's bug, not a client's.
  if (!isValidObjectId(ref.fileId)) throw new Error('invalid file id');
  return KEY_PREFIX + ref.fileId;
}

/** Only a missing key is a missing file: a missing bucket (also a 404) is a broken setup. */
function isNoSuchKey(error: unknown): boolean {
  const name = (error as { name?: unknown } | null | undefined)?.name;
  return name === 'NoSuchKey' || (httpStatusOf(error) === 404 && name !== 'NoSuchBucket');
}

function bodyOf(response: GetObjectCommandOutput): Readable {
  if (!(response.Body instanceof Readable)) throw new Error('the object store sent no body stream');
  return response.Body;
}

/** Which bytes a GET answered with: its Content-Range, or the whole object for a plain 200. */
function servedRange(response: GetObjectCommandOutput): { start: number; end: number } {
  const match = /^bytes (\d+)-(\d+)\//.exec(response.ContentRange ?? '');
  if (match) return { start: Number(match[1]), end: Number(match[2]) };
  return { start: 0, end: (response.ContentLength ?? 0) - 1 };
}

/**
 * The `length` bytes of `body` after its first `skip`. HTTP lets a server answer a range with
 * more than was asked (the whole object; s3rver reads `bytes=0-0` as "0 to the end"), and the
 * caller is owed exactly its range. Ends as soon as the range has passed, and letting go of
 * the cut (relay does, once it is read) releases the body's connection.
 */
function cut(body: Readable, skip: number, length: number): Readable {
  const end = skip + length;
  let position = 0;
  const cutter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (position < end) {
        const from = Math.max(0, skip - position);
        const to = Math.min(chunk.length, end - position);
        if (to > from) this.push(chunk.subarray(from, to));
        if (position + chunk.length >= end) this.push(null);
      }
      position += chunk.length;
      callback();
    },
  });
  // The body's failure reaches the cut (and through relay, the caller); the cut's end or
  // destruction destroys the body.
  pipeline(body, cutter, () => undefined);
  return cutter;
}

/**
 * Feeds `body` into `out` with the store's failures as the domain's, and releases the body
 * (its connection) whenever `out` closes, read to the end or given up by its consumer.
 */
function relay(body: Readable, out: PassThrough): Readable {
  if (out.destroyed) {
    body.destroy();
    return out;
  }
  // The readable side is all that matters here: a cut ends it before its input has ended.
  finished(body, { writable: false }, (error) => {
    if (error && !out.destroyed) out.destroy(toDomainStreamError(error));
  });
  out.once('close', () => body.destroy());
  body.pipe(out);
  return out;
}
