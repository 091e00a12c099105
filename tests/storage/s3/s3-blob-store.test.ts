/**
 * The S3 blob store against s3rver in-process (started and stopped here): the BlobStore
 * contract on a fresh bucket per case, then what is its own: the key layout, a store that
 * fails part-way through a multipart upload, readiness within its timeout, the bucket made
 * on demand, failures as the domain's errors with nothing of the endpoint or the
 * credentials in them, and the SDK's Node 20 warning kept out of the log.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, ServiceUnavailable } from '../../../src/errors';
import { newObjectId } from '../../../src/sessions/ids';
import type { BlobRef } from '../../../src/sessions/ports';
import { READY_TIMEOUT_MS, S3BlobStore, type S3Settings } from '../../../src/storage/s3/s3-blob-store';
import { freePort } from '../../helpers/free-port';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver';
import { describeBlobStoreContract } from '../blob-store-contract';

const MiB = 1024 * 1024;
const LONG = 120_000;

let s3: S3rverHandle;
const stores: S3BlobStore[] = [];

beforeAll(async () => {
  s3 = await startS3rver();
});

afterAll(async () => {
  for (const store of stores.splice(0)) store.close();
  await s3.stop();
});

function newBucket(): string {
  return `test-${randomUUID().slice(0, 13)}`;
}

/** A store on a new bucket here (made), closed after the file. */
async function storeOnNewBucket(): Promise<{ blobs: S3BlobStore; bucket: string }> {
  const bucket = newBucket();
  const blobs = track(new S3BlobStore(s3.settings(bucket)));
  await blobs.ensureBucket();
  return { blobs, bucket };
}

function track(store: S3BlobStore): S3BlobStore {
  stores.push(store);
  return store;
}

const ref = (): BlobRef => ({ userId: 'auth0|alice@example.com', sessionId: newObjectId(), fileId: newObjectId() });

describeBlobStoreContract('S3 (s3rver, 5 MiB parts)', async () => {
  const bucket = newBucket();
  const blobs = new S3BlobStore(s3.settings(bucket));
  await blobs.ensureBucket();
  return { blobs, close: async () => blobs.close(), leftovers: () => s3.contents(bucket) };
});

describe('S3 blob store', () => {
  test('an object is keyed files/<file id>: no user id, session id or file name in it', async () => {
    const { blobs, bucket } = await storeOnNewBucket();
    const r = ref();
    await blobs.put(r, Readable.from([Buffer.from('report.pdf bytes')]));
    expect(await s3.contents(bucket)).toEqual([`object files/${r.fileId}`]);
  });

  test(
    'a store that fails a part: the put rejects as ServiceUnavailable, releases its source, and aborts the upload',
    async () => {
      const { blobs, bucket } = await storeOnNewBucket();
      const r = ref();
      const failing = s3.failRequests(({ method, url }) => method === 'PUT' && url.searchParams.get('partNumber') === '2');
      try {
        const source = Readable.from([randomBytes(12 * MiB)], { objectMode: false });
        const error = await blobs.put(r, source).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ServiceUnavailable);
        expect((error as ServiceUnavailable).headers['Retry-After']).toBe('5');
        expect(source.destroyed).toBe(true);
      } finally {
        failing();
      }
      expect(s3.requests.some(({ method, url }) => method === 'DELETE' && url.searchParams.has('uploadId'))).toBe(true);
      expect(await s3.contents(bucket)).toEqual([]);
      expect(await blobs.open(r)).toBeNull();
    },
    LONG,
  );

  test('a missing bucket is a broken setup, not a missing file: open rejects with the store\'s own error', async () => {
    const blobs = track(new S3BlobStore(s3.settings(newBucket())));
    const error = await blobs.open(ref()).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'NoSuchBucket' });
    expect(error).not.toBeInstanceOf(AppError);
  });

  test('ensureBucket makes a missing bucket and is fine when it exists', async () => {
    const bucket = newBucket();
    const blobs = track(new S3BlobStore(s3.settings(bucket)));
    expect(await blobs.ready()).toBe(false);
    await blobs.ensureBucket();
    await blobs.ensureBucket();
    await Promise.all([blobs.ensureBucket(), track(new S3BlobStore(s3.settings(bucket))).ensureBucket()]);
    expect(await blobs.ready()).toBe(true);
  });

  test('settings it cannot work with are refused when the store is made, without echoing them', () => {
    const settings = s3.settings('any-bucket');
    expect(() => new S3BlobStore({ ...settings, partSize: 5 * MiB - 1 })).toThrow('at least 5 MiB');
    expect(() => new S3BlobStore({ ...settings, secretAccessKey: undefined })).toThrow(/go together/);
    try {
      new S3BlobStore({ ...settings, secretAccessKey: undefined });
    } catch (error) {
      expect((error as Error).message).not.toContain(settings.accessKeyId);
    }
  });
});

describe('S3 blob store readiness', () => {
  test('ready() is true when the bucket answers', async () => {
    const { blobs } = await storeOnNewBucket();
    expect(await blobs.ready()).toBe(true);
  });

  test('ready() is false, within its timeout, when nothing listens at the endpoint', async () => {
    const blobs = track(new S3BlobStore({ ...s3.settings('some-bucket'), endpoint: `http://127.0.0.1:${await freePort()}` }));
    const started = Date.now();
    expect(await blobs.ready()).toBe(false);
    expect(Date.now() - started).toBeLessThan(READY_TIMEOUT_MS + 3_000);
  });

  test('ready() is false, within its timeout, when the endpoint accepts connections and never answers', async () => {
    const sockets = new Set<net.Socket>();
    const blackHole = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = blackHole.address() as net.AddressInfo;
      const blobs = track(new S3BlobStore({ ...s3.settings('some-bucket'), endpoint: `http://127.0.0.1:${port}` }));
      const started = Date.now();
      expect(await blobs.ready()).toBe(false);
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(READY_TIMEOUT_MS - 50);
      expect(took).toBeLessThan(READY_TIMEOUT_MS + 3_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => blackHole.close(resolve));
    }
  });
});

describe('S3 blob store failures', () => {
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY';
  const keyId = 'AKIAIOSFODNN7LEAKCHECK';
  let stopped: { settings: S3Settings; port: string };

  beforeAll(async () => {
    // A store that was there and went away: its port now refuses connections.
    const gone = await startS3rver();
    const settings = { ...gone.settings('some-bucket'), accessKeyId: keyId, secretAccessKey: secret };
    await gone.stop();
    stopped = { settings, port: new URL(gone.endpoint).port };
  });

  function expectUnavailable(error: unknown): void {
    expect(error).toBeInstanceOf(ServiceUnavailable);
    const e = error as ServiceUnavailable;
    expect(e.status).toBe(503);
    expect(e.headers['Retry-After']).toBe('5');
    const everything = `${e.message} ${e.detail} ${JSON.stringify(e)} ${String(e.stack)}`;
    for (const leak of [secret, keyId, stopped.port, '127.0.0.1', 'some-bucket']) expect(everything).not.toContain(leak);
  }

  test('open, put, delete and ensureBucket on a stopped endpoint are ServiceUnavailable with Retry-After, naming nothing of it', async () => {
    const blobs = track(new S3BlobStore(stopped.settings));
    expectUnavailable(await blobs.open(ref()).catch((e: unknown) => e));
    expectUnavailable(await blobs.delete(ref()).catch((e: unknown) => e));
    expectUnavailable(await blobs.ensureBucket().catch((e: unknown) => e));
    expectUnavailable(await blobs.put(ref(), Readable.from([Buffer.from('x')])).catch((e: unknown) => e));
  });

  test(
    'a put the store cannot take releases what feeds it: the client\'s side settles instead of waiting for ever',
    async () => {
      const blobs = track(new S3BlobStore(stopped.settings));
      // As the domain wires it: the client's bytes through a meter into the store.
      const client = Readable.from(
        (function* () {
          for (let i = 0; i < 64; i += 1) yield randomBytes(MiB);
        })(),
        { objectMode: false },
      );
      const meter = new PassThrough();
      const [received, stored] = await Promise.allSettled([pipeline(client, meter), blobs.put(ref(), meter)]);
      expect(stored.status).toBe('rejected');
      expectUnavailable((stored as PromiseRejectedResult).reason);
      expect(received.status).toBe('rejected');
      expect(client.destroyed).toBe(true);
    },
    LONG,
  );
});

describe('the SDK\'s Node version warning', () => {
  test('making a store prints no NodeVersionSupportWarning', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const saved = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    try {
      // A fresh copy of the SDK, whose once-per-process warning has not been given yet.
      jest.isolateModules(() => {
        const fresh = jest.requireActual<{ S3BlobStore: typeof S3BlobStore }>('../../../src/storage/s3/s3-blob-store');
        new fresh.S3BlobStore(s3.settings('any-bucket')).close();
      });
      const warnings = emitWarning.mock.calls.map(([warning]) => String(warning));
      expect(warnings.filter((w) => w.includes('NodeVersionSupportWarning'))).toEqual([]);
    } finally {
      emitWarning.mockRestore();
      if (saved === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
      else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = saved;
    }
  });
});
