/**
 * The S3 blob store's answer deadline: an attempt that goes the deadline without progress (no
 * slice of its body taken, no answer) is aborted and fails as the store being unavailable, once,
 * not once per attempt; a transfer that moves, however slowly, is never cut by it.
 *
 * First the deadline itself, around a stand-in for the SDK's HTTP handler whose pace the test
 * sets (deterministic); then the store against s3rver that takes requests and never answers
 * them, and through a TCP proxy that stops carrying bytes or carries them slowly.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { ServiceUnavailable } from '../../../src/errors';
import { newObjectId } from '../../../src/sessions/ids';
import type { BlobRef } from '../../../src/sessions/ports';
import { ANSWER_TIMEOUT_MS, AnswerDeadline, S3BlobStore } from '../../../src/storage/s3/s3-blob-store';
import { NoAnswerError } from '../../../src/storage/s3/s3-errors';
import { startS3rver, type S3rverHandle, type SeenRequest } from '../../helpers/s3rver';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy';

const MiB = 1024 * 1024;
const LONG = 60_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whatever a promise settles with, and when, in ms after `started`. */
async function timed<T>(work: Promise<T>, started = performance.now()): Promise<{ value?: T; error?: unknown; ms: number }> {
  try {
    const value = await work;
    return { value, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}

test('the service\'s answer deadline is the documented 8 s', () => {
  expect(ANSWER_TIMEOUT_MS).toBe(8_000);
});

describe('the answer deadline around an HTTP handler', () => {
  type Handler = ConstructorParameters<typeof AnswerDeadline>[0];
  type Request = Parameters<Handler['handle']>[0];

  /** Deadline of these cases: timers are checked to within a few hundred ms. */
  const DEADLINE = 400;
  /** Slack for a busy machine's timers on top of an expected time. */
  const SLACK = 350;

  interface Attempt {
    request: Request;
    signal: AbortSignal;
  }

  /**
   * A stand-in for the SDK's handler: `behave` gets each attempt's request and signal, and
   * the attempt answers (200, no body) once it resolves. Like the SDK's handler, an aborted
   * signal rejects the attempt with an AbortError at once.
   */
  function handlerThat(behave: (attempt: Attempt) => Promise<void>): { handler: AnswerDeadline; attempts: Attempt[] } {
    const attempts: Attempt[] = [];
    const inner = {
      metadata: { handlerProtocol: 'http/1.1' },
      handle: async (request: Request, options: { abortSignal?: AbortSignal } = {}) => {
        const signal = options.abortSignal!;
        const attempt = { request, signal };
        attempts.push(attempt);
        const aborted = new Promise<never>((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' })), { once: true }),
        );
        await Promise.race([behave(attempt), aborted]);
        return { response: { statusCode: 200, headers: {}, body: undefined } };
      },
      updateHttpClientConfig: () => undefined,
      httpHandlerConfigs: () => ({}),
    } as unknown as Handler;
    return { handler: new AnswerDeadline(inner, DEADLINE), attempts };
  }

  function request(body?: Buffer): Request {
    return {
      method: body ? 'PUT' : 'GET',
      protocol: 'http:',
      hostname: 'store.invalid',
      path: '/bucket/key',
      query: {},
      headers: body ? { 'content-length': String(body.length) } : {},
      body,
    } as unknown as Request;
  }

  /**
   * Takes `body` a slice at a time, pausing `pauseMs` after each, as a slow connection does;
   * stops taking after `slices` of them (all when unset).
   */
  function take(body: unknown, pauseMs: number, slices = Infinity): Promise<Buffer> {
    if (!(body instanceof Readable)) throw new Error(`the handler was given a ${typeof body} body, not a stream`);
    const taken: Buffer[] = [];
    return new Promise((resolve, reject) => {
      body.on('data', (slice: Buffer) => {
        taken.push(slice);
        body.pause();
        if (taken.length >= slices) resolve(Buffer.concat(taken));
        else setTimeout(() => body.resume(), pauseMs);
      });
      body.once('end', () => resolve(Buffer.concat(taken)));
      body.once('error', reject);
    });
  }

  const forever = () => new Promise<never>(() => undefined);

  test('an attempt that gets no answer fails with NoAnswerError after the deadline, and its request is aborted', async () => {
    const { handler, attempts } = handlerThat(forever);
    const result = await timed(handler.handle(request()));
    expect(result.error).toBeInstanceOf(NoAnswerError);
    expect(result.ms).toBeGreaterThanOrEqual(DEADLINE - 20);
    expect(result.ms).toBeLessThan(DEADLINE + SLACK);
    expect(attempts[0]!.signal.aborted).toBe(true);
    expect(attempts[0]!.signal.reason).toBe(result.error);
  });

  test('a body the connection takes a slice at a time is never cut, however long the whole takes', async () => {
    // 25 slices, the last one short.
    const bytes = randomBytes(24 * 64 * 1024 + 5);
    let received: Buffer | undefined;
    const { handler } = handlerThat(async ({ request: r }) => {
      received = await take(r.body, DEADLINE / 4);
    });
    const result = await timed(handler.handle(request(bytes)));
    expect(result.error).toBeUndefined();
    // Six deadlines and more for the whole body: only the wait between slices counts.
    expect(result.ms).toBeGreaterThan(6 * DEADLINE);
    expect(received?.equals(bytes)).toBe(true);
  });

  test('a body that stops being taken fails the attempt a deadline after the last slice', async () => {
    const { handler, attempts } = handlerThat(async ({ request: r }) => {
      await take(r.body, DEADLINE / 4, 4);
      await forever();
    });
    const result = await timed(handler.handle(request(randomBytes(2 * MiB))));
    expect(result.error).toBeInstanceOf(NoAnswerError);
    expect(result.ms).toBeGreaterThanOrEqual(3 * (DEADLINE / 4) + DEADLINE - 20);
    expect(result.ms).toBeLessThan(3 * (DEADLINE / 4) + DEADLINE + SLACK);
    expect(attempts[0]!.signal.aborted).toBe(true);
  });

  test('a body taken whole and no answer: the deadline runs from the last slice', async () => {
    let lastSlice = 0;
    const { handler } = handlerThat(async ({ request: r }) => {
      await take(r.body, DEADLINE / 2);
      lastSlice = performance.now();
      await forever();
    });
    const result = await timed(handler.handle(request(randomBytes(6 * 64 * 1024))));
    expect(result.error).toBeInstanceOf(NoAnswerError);
    const afterLastSlice = performance.now() - lastSlice;
    expect(afterLastSlice).toBeGreaterThanOrEqual(DEADLINE - 20 - DEADLINE / 2);
    expect(afterLastSlice).toBeLessThan(DEADLINE + SLACK);
    // Longer than one deadline from the start: the slices kept it going.
    expect(result.ms).toBeGreaterThan(2 * DEADLINE);
  });

  test('the caller\'s own abort reaches the request, and fails the attempt as an abort, not as no answer', async () => {
    const { handler, attempts } = handlerThat(forever);
    const caller = new AbortController();
    setTimeout(() => caller.abort(), DEADLINE / 4);
    const result = await timed(handler.handle(request(), { abortSignal: caller.signal }));
    expect(result.error).toMatchObject({ name: 'AbortError' });
    expect(result.error).not.toBeInstanceOf(NoAnswerError);
    expect(result.ms).toBeLessThan(DEADLINE);
    expect(attempts[0]!.signal.aborted).toBe(true);
  });

  test('an answer ends the deadline: nothing is aborted afterwards, even while the body is still being taken', async () => {
    let taking: Promise<Buffer> | undefined;
    const { handler, attempts } = handlerThat(async ({ request: r }) => {
      // Answers at once (as a store refusing a request does) and takes the body slowly after.
      taking = take(r.body, DEADLINE / 2);
    });
    const result = await timed(handler.handle(request(randomBytes(8 * 64 * 1024))));
    expect(result.error).toBeUndefined();
    await taking;
    await sleep(DEADLINE + SLACK);
    expect(attempts[0]!.signal.aborted).toBe(false);
  });

  test('each attempt (the SDK\'s retries) gets the whole body: an attempt does not use up the request', async () => {
    const bytes = randomBytes(5 * 64 * 1024 + 1);
    const received: Buffer[] = [];
    const { handler } = handlerThat(async ({ request: r }) => {
      received.push(await take(r.body, 0));
    });
    const original = request(bytes);
    await handler.handle(original);
    await handler.handle(original);
    expect(received.map((b) => b.equals(bytes))).toEqual([true, true]);
    expect(original.body).toBe(bytes);
  });

  test('a body of one slice or less, or without a Content-Length, goes as it is', async () => {
    const bodies: unknown[] = [];
    const { handler } = handlerThat(async ({ request: r }) => {
      bodies.push(r.body);
    });
    const small = randomBytes(64 * 1024);
    const unmeasured = randomBytes(MiB);
    await handler.handle(request(small));
    await handler.handle({ ...request(unmeasured), headers: {} } as Request);
    expect(bodies).toEqual([small, unmeasured]);
  });
});

describe('the S3 blob store on a store that stops answering', () => {
  /** The deadline of the stores made here: short, so that the cases stay quick. */
  const DEADLINE = 1_000;
  /** An upper bound on one deadline's failure: far below the SDK's three attempts. */
  const ONE_DEADLINE = DEADLINE + 1_500;

  let s3: S3rverHandle;
  let proxy: TcpProxy;
  const stores: S3BlobStore[] = [];
  const releases: Array<() => void> = [];

  beforeAll(async () => {
    s3 = await startS3rver();
    const direct = new URL(s3.endpoint);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port) });
  });

  afterEach(() => {
    for (const release of releases.splice(0)) release();
    proxy.throttle(null);
  });

  afterAll(async () => {
    for (const store of stores.splice(0)) store.close();
    await proxy.close();
    await s3.stop();
  });

  /** A store with the short deadline on a new bucket (made), directly or through the proxy. */
  async function newStore(through: 'direct' | 'proxy' = 'direct'): Promise<{ blobs: S3BlobStore; bucket: string }> {
    const bucket = `deadline-${randomUUID().slice(0, 13)}`;
    const settings = s3.settings(bucket);
    const endpoint = through === 'proxy' ? `http://${proxy.host}:${proxy.port}` : settings.endpoint;
    const blobs = new S3BlobStore({ ...settings, endpoint }, { answerTimeoutMs: DEADLINE });
    stores.push(blobs);
    await blobs.ensureBucket();
    return { blobs, bucket };
  }

  const ref = (): BlobRef => ({ userId: 'auth0|alice', sessionId: newObjectId(), fileId: newObjectId() });

  function hang(match: (request: SeenRequest) => boolean): () => void {
    const release = s3.hangRequests(match);
    releases.push(release);
    return release;
  }

  const about = (r: BlobRef) => (seen: SeenRequest) => seen.url.pathname.endsWith(`/files/${r.fileId}`);

  function expectUnavailable(error: unknown): void {
    expect(error).toBeInstanceOf(ServiceUnavailable);
    expect((error as ServiceUnavailable).headers['Retry-After']).toBe('5');
  }

  test(
    'open, delete and a one-request put fail as ServiceUnavailable with Retry-After after one deadline, the request sent once',
    async () => {
      const { blobs, bucket } = await newStore();
      const stored = ref();
      await blobs.put(stored, Readable.from([Buffer.from('kept')]));
      const fresh = ref();
      hang(about(stored));
      hang(about(fresh));
      const before = s3.requests.length;
      const source = Readable.from([randomBytes(300 * 1024)]);
      // One at a time: each is measured on its own.
      const opened = await timed(blobs.open(stored));
      const deleted = await timed(blobs.delete(stored));
      const put = await timed(blobs.put(fresh, source));
      for (const result of [opened, deleted, put]) {
        expectUnavailable(result.error);
        expect(result.ms).toBeGreaterThanOrEqual(DEADLINE - 20);
        expect(result.ms).toBeLessThan(ONE_DEADLINE);
      }
      expect(source.destroyed).toBe(true);
      // Not retried: one GET, one DELETE, one PUT (and the put's cleanup, which did not hold it).
      const sent = s3.requests.slice(before).map((r) => `${r.method} ${r.url.pathname.endsWith(stored.fileId) ? 'stored' : 'fresh'}`);
      expect(sent.slice(0, 3)).toEqual(['GET stored', 'DELETE stored', 'PUT fresh']);
      expect(sent.filter((line) => line !== 'DELETE fresh')).toHaveLength(3);

      // Back: nothing of the put is there, the stored file is intact.
      for (const release of releases.splice(0)) release();
      const back = await blobs.open(stored);
      expect(back).not.toBeNull();
      const chunks: Buffer[] = [];
      for await (const chunk of back!.stream()) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toBe('kept');
      expect(await s3.contents(bucket)).toEqual([`object files/${stored.fileId}`]);
    },
    LONG,
  );

  test(
    'an upload whose part gets no answer fails as ServiceUnavailable within a deadline, and its multipart upload is aborted',
    async () => {
      const { blobs, bucket } = await newStore();
      const r = ref();
      hang(({ method, url }) => method === 'PUT' && url.searchParams.get('partNumber') === '2');
      const source = Readable.from([randomBytes(12 * MiB)], { objectMode: false });
      const result = await timed(blobs.put(r, source));
      expectUnavailable(result.error);
      expect(result.ms).toBeLessThan(ONE_DEADLINE + 2_000);
      expect(source.destroyed).toBe(true);
      // Asked once: the SDK did not retry the part that got no answer.
      expect(s3.requests.filter((seen) => about(r)(seen) && seen.url.searchParams.get('partNumber') === '2')).toHaveLength(1);
      // The cleanup goes on after the answer: the store answers it, and nothing is left.
      await expect(eventually(async () => (await s3.contents(bucket)).length === 0)).resolves.toBe(true);
      expect(s3.requests.some(({ method, url }) => method === 'DELETE' && about(r)({ method, url }) && url.searchParams.has('uploadId'))).toBe(true);
    },
    LONG,
  );

  test(
    'a CompleteMultipartUpload gets twice the deadline (MinIO sends its first byte only after 10 s), then fails the same way',
    async () => {
      const { blobs, bucket } = await newStore();
      const r = ref();
      hang(({ method, url }) => method === 'POST' && url.searchParams.has('uploadId'));
      const putting = blobs.put(r, Readable.from([randomBytes(6 * MiB)], { objectMode: false }));
      const asked = await eventually(async () => s3.requests.some(({ method, url }) => method === 'POST' && about(r)({ method, url }) && url.searchParams.has('uploadId')));
      expect(asked).toBe(true);
      const result = await timed(putting);
      expectUnavailable(result.error);
      expect(result.ms).toBeGreaterThanOrEqual(2 * DEADLINE - 100);
      expect(result.ms).toBeLessThan(2 * DEADLINE + 1_500);
      await expect(eventually(async () => (await s3.contents(bucket)).length === 0)).resolves.toBe(true);
    },
    LONG,
  );

  test(
    'an upload whose connection stops carrying its part fails as ServiceUnavailable within a deadline of the stall',
    async () => {
      const { blobs, bucket } = await newStore('proxy');
      const r = ref();
      const before = s3.requests.length;
      const putting = timed(blobs.put(r, Readable.from([randomBytes(7 * MiB)], { objectMode: false })));
      // Once the first part's request reached the store, nothing more passes either way.
      await eventually(async () => s3.requests.slice(before).some(({ url }) => url.searchParams.has('partNumber')), 20_000);
      const stalled = performance.now();
      proxy.throttle(0);
      const result = await putting;
      expectUnavailable(result.error);
      expect(performance.now() - stalled).toBeLessThan(ONE_DEADLINE);
      // The link comes back: the cleanup that waited behind the stall removes what was started.
      proxy.throttle(null);
      await expect(eventually(async () => (await s3.contents(bucket)).length === 0)).resolves.toBe(true);
    },
    LONG,
  );

  test(
    'a download slower than the deadline is not cut: the deadline ends with the answer\'s headers',
    async () => {
      const { blobs } = await newStore('proxy');
      const r = ref();
      const bytes = randomBytes(3 * MiB);
      await blobs.put(r, Readable.from([bytes]));
      proxy.throttle(MiB);
      const started = performance.now();
      const opened = await blobs.open(r);
      const chunks: Buffer[] = [];
      for await (const chunk of opened!.stream()) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
      expect(performance.now() - started).toBeGreaterThan(2 * DEADLINE);
    },
    LONG,
  );
});

/** Polls `check` until it holds (true) or `timeoutMs` passes (false). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}
