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
  type S3ExtensionConfiguration,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { isValidObjectId } from '../../sessions/ids';
import type { BlobRef, BlobStore, OpenedBlob } from '../../sessions/ports';
import { NoAnswerError, httpStatusOf, isTimeout, toDomainError, toDomainStreamError } from './s3-errors';

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

/*
 * How long a client's request waits on the store, at most.
 *
 * Every request to the store (GetObject, HeadBucket, DeleteObject, and each PutObject,
 * CreateMultipartUpload, UploadPart, CompleteMultipartUpload and AbortMultipartUpload of a
 * put) is one or more attempts. An attempt ends after CONNECT_TIMEOUT_MS without a
 * connection (the SDK's TimeoutError, which the SDK retries), or after its answer deadline
 * without progress: no slice of its body taken by the connection and no answer
 * (NoAnswerError, which the SDK does not retry). The SDK makes at most MAX_ATTEMPTS attempts,
 * with well under a second of backoff between them. So a request to a store that
 *
 * - refuses connections or answers 5xx fails within milliseconds (three quick attempts);
 * - drops connection attempts fails after 3 x CONNECT_TIMEOUT_MS plus backoff, under 10 s;
 * - takes connections and never answers fails after one answer deadline: ANSWER_TIMEOUT_MS,
 *   8 s; 14 s for a body of 2 MiB or more, which the SDK first offers with
 *   `Expect: 100-continue` and sends anyway after 6 s without a reply to that (its own wait,
 *   inside the deadline, which starts again as the body goes); COMPLETE_ANSWER_TIMEOUT_MS,
 *   16 s, for a CompleteMultipartUpload;
 * - at worst fails every attempt with a retryable error just short of the deadline:
 *   MAX_ATTEMPTS x ANSWER_TIMEOUT_MS plus backoff, about 25 s.
 *
 * A download waits on one such request before its first byte. A failed upload waits on two,
 * the put and then the domain's delete of whatever the put may have left (the put's own
 * cleanup does not hold it after a timeout): 16 s when the store takes connections and never
 * answers, 22 s for a file of 2 MiB or more that goes in one PutObject. Both stay inside the
 * default UPLOAD_IDLE_TIMEOUT_MS of 30 s, which the client's connection, silent while it
 * waits for the answer, would otherwise run into.
 */

/**
 * A store that does not accept a connection in this long is unreachable. A TCP connect to a
 * store nearby takes milliseconds and a lost SYN is sent again after 1 s, so 3 s misses no
 * reachable store, and three attempts take about as long as one answer deadline.
 */
const CONNECT_TIMEOUT_MS = 3_000;
/**
 * An attempt that makes no progress for this long is aborted, and fails as the store being
 * unavailable (503 with Retry-After). Progress is a slice of the request's body taken by the
 * connection, or the answer's headers: a slow link that moves a part of any size a little at
 * a time is not cut, only waiting on a store that stopped answering is. (What the connection
 * took may still sit in the kernel's send buffer, a few MB at most, while the answer is
 * awaited: only a link slower than a few hundred KB/s could see a part cut for that.) S3
 * answers a small request in tens of milliseconds and AWS advises retrying one that takes
 * 2 s; 8 s leaves room for a slow self-hosted store under load, and keeps a failed upload's
 * answer (two such waits, see above) well inside the client's upload idle timeout.
 */
export const ANSWER_TIMEOUT_MS = 8_000;
/**
 * The answer deadline of a CompleteMultipartUpload, which a store may take long to start
 * answering: AWS S3 sends its headers as soon as it starts the work and whitespace while it
 * goes on, but MinIO sends its first byte only after 10 s when completing takes longer.
 */
const COMPLETE_ANSWER_TIMEOUT_MS = 2 * ANSWER_TIMEOUT_MS;
/** The SDK's default, stated here because the bound above depends on it. */
const MAX_ATTEMPTS = 3;
/**
 * A connection with no traffic for this long is cut. No outage answer depends on it (the
 * answer deadline bounds every wait for an answer); what it still ends is the body of an
 * answer after its headers. A download whose body stops coming is ended sooner, by the
 * service's DOWNLOAD_IDLE_TIMEOUT_MS on the client's side (30 s by default). But a download
 * whose client merely pauses reading leaves this connection idle as well, so this stays well
 * above that setting: a paused download is ended by the service's own, configurable timeout
 * (honoured up to this value), not by this one. It is also far longer than the pauses between
 * the whitespace a store sends to keep a slow CompleteMultipartUpload's answer alive (10 s
 * for MinIO).
 */
const SOCKET_IDLE_TIMEOUT_MS = 120_000;
/** Readiness answers within this, reachable or not: a probe must not hang on a hung store. */
export const READY_TIMEOUT_MS = 2_000;
/** Removing what a failed put left gives up after this; a bucket lifecycle rule is the backstop. */
const CLEANUP_TIMEOUT_MS = 15_000;

/** For tests only: the service always makes the store with the defaults. */
export interface S3InternalOptions {
  /** ANSWER_TIMEOUT_MS unless set; a CompleteMultipartUpload gets twice this. */
  answerTimeoutMs?: number;
}

export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly region: string;
  private readonly partSize: number;

  constructor(settings: S3Settings, internal: S3InternalOptions = {}) {
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
      maxAttempts: MAX_ATTEMPTS,
      requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: SOCKET_IDLE_TIMEOUT_MS },
      // Around the SDK's own HTTP handler, made from the settings above: the answer deadline
      // of every attempt. The SDK's requestTimeout cannot be it: it runs from the start of the
      // attempt to the answer, the upload of the body included, so it would cut a big part
      // sent over a slow link.
      extensions: [
        {
          configure: (extension: S3ExtensionConfiguration) =>
            extension.setHttpHandler(new AnswerDeadline(extension.httpHandler(), answerDeadlines(internal.answerTimeoutMs))),
        },
      ],
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
      if (key !== undefined) {
        const removing = this.removeRemains(key, upload?.uploadId);
        // A store that let the put time out would most likely let the cleanup time out as
        // well, and the client's answer would wait for it too: the cleanup then goes on
        // without the caller (it never rejects, and gives up after CLEANUP_TIMEOUT_MS).
        if (!isTimeout(error)) await removing;
      }
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

type SdkHttpHandler = ReturnType<S3ExtensionConfiguration['httpHandler']>;
type SdkHttpRequest = Parameters<SdkHttpHandler['handle']>[0];
type SdkHandlerOptions = NonNullable<Parameters<SdkHttpHandler['handle']>[1]>;
type SdkHandlerOutput = Awaited<ReturnType<SdkHttpHandler['handle']>>;

/** A body is handed to the connection in slices of this size, each one taken counting as progress. */
const BODY_SLICE_BYTES = 64 * 1024;

/** The answer deadline of each request: ANSWER_TIMEOUT_MS, longer for a CompleteMultipartUpload. */
function answerDeadlines(answerTimeoutMs = ANSWER_TIMEOUT_MS): (request: SdkHttpRequest) => number {
  const complete = (COMPLETE_ANSWER_TIMEOUT_MS / ANSWER_TIMEOUT_MS) * answerTimeoutMs;
  // POST ?uploadId=… is CompleteMultipartUpload (CreateMultipartUpload is POST ?uploads).
  return (request) => (request.method === 'POST' && request.query?.uploadId !== undefined ? complete : answerTimeoutMs);
}

/**
 * The SDK's HTTP handler with an answer deadline on every attempt (one call of `handle`; the
 * SDK's retries sit above it): once the attempt goes its deadline without progress, its
 * request is aborted (which frees the connection) and it fails with a NoAnswerError.
 * Progress is a slice of the request's body taken by the connection, then the answer's
 * headers; the deadline ends there, so a download's body is never under it. An abort of the
 * caller's own (a reader that went away, readiness giving up) still reaches the request.
 * Exported for its tests only.
 */
export class AnswerDeadline implements SdkHttpHandler {
  readonly metadata: SdkHttpHandler['metadata'];

  /** `deadline` is a number of ms, or tells it for each request. */
  constructor(
    private readonly inner: SdkHttpHandler,
    private readonly deadline: number | ((request: SdkHttpRequest) => number),
  ) {
    this.metadata = inner.metadata;
  }

  async handle(request: SdkHttpRequest, options: SdkHandlerOptions = {}): Promise<SdkHandlerOutput> {
    const controller = new AbortController();
    const outer = options.abortSignal;
    const relayAbort = () => controller.abort((outer as AbortSignal).reason);
    if (outer !== undefined) {
      // The SDK's type also admits a bare { aborted, onabort } object; nothing here passes one.
      if (typeof (outer as Partial<AbortSignal>).addEventListener !== 'function') throw new TypeError('an AbortSignal is needed');
      if (outer.aborted) relayAbort();
      else (outer as AbortSignal).addEventListener('abort', relayAbort, { once: true });
    }
    const timeoutMs = typeof this.deadline === 'number' ? this.deadline : this.deadline(request);
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let expire: (error: NoAnswerError) => void = () => undefined;
    const expired = new Promise<never>((_resolve, reject) => (expire = reject));
    const progress = () => {
      if (settled) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        const error = new NoAnswerError(timeoutMs);
        expire(error);
        controller.abort(error);
      }, timeoutMs);
    };
    progress();
    try {
      return await Promise.race([
        this.inner.handle(withProgress(request, progress), { ...options, abortSignal: controller.signal }),
        expired,
      ]);
    } finally {
      settled = true;
      clearTimeout(timer);
      (outer as AbortSignal | undefined)?.removeEventListener?.('abort', relayAbort);
    }
  }

  updateHttpClientConfig(...args: Parameters<SdkHttpHandler['updateHttpClientConfig']>): void {
    this.inner.updateHttpClientConfig(...args);
  }

  httpHandlerConfigs(): ReturnType<SdkHttpHandler['httpHandlerConfigs']> {
    return this.inner.httpHandlerConfigs();
  }

  destroy(): void {
    this.inner.destroy?.();
  }
}

/**
 * `request` with its body handed over a slice at a time, calling `progress` as the connection
 * takes each one (a slice is asked for once the one before is written). The SDK writes a byte
 * body in one go, which says nothing until the last byte is out. A body of one slice or less
 * goes as it is, and so does one without a Content-Length, which the SDK's one-go write
 * supplies and a streamed write would replace with chunked encoding.
 */
function withProgress(request: SdkHttpRequest, progress: () => void): SdkHttpRequest {
  const body: unknown = request.body;
  let sliced: Readable;
  if (body instanceof Readable) {
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        progress();
        callback(null, chunk);
      },
    });
    pipeline(body, meter, () => undefined);
    sliced = meter;
  } else if (body instanceof Uint8Array && body.byteLength > BODY_SLICE_BYTES && hasContentLength(request.headers)) {
    let offset = 0;
    sliced = new Readable({
      read() {
        progress();
        if (offset >= body.byteLength) {
          this.push(null);
          return;
        }
        const end = Math.min(offset + BODY_SLICE_BYTES, body.byteLength);
        this.push(Buffer.from(body.buffer, body.byteOffset + offset, end - offset));
        offset = end;
      },
    });
  } else {
    return request;
  }
  // A copy: the SDK makes each attempt from the same request, and a retry must find the bytes.
  return Object.assign(Object.create(Object.getPrototypeOf(request) as object) as SdkHttpRequest, request, { body: sliced });
}

function hasContentLength(headers: Record<string, string>): boolean {
  return Object.keys(headers).some((name) => name.toLowerCase() === 'content-length');
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
