/**
 * What every BlobStore must do, as one suite run once per store (S3 over s3rver, the flat
 * filesystem store): exact bytes and sizes, byte ranges, missing refs, deletes, failed puts
 * that leave nothing, bytes that stay invisible until their put resolves, and opened blobs
 * that let go of what they hold. Each case gets a fresh store, so `leftovers()` is exactly
 * what that case left behind. It never looks at a store's layout itself: only `leftovers()`
 * does, and only to count and to find the file id in what it names.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { newObjectId } from '../../src/sessions/ids';
import type { BlobRef, BlobStore } from '../../src/sessions/ports';

export interface BlobStoreUnderTest {
  blobs: BlobStore;
  close(): Promise<void>;
  /** Everything the store still holds: blobs, staging files, multipart uploads. */
  leftovers(): Promise<string[]>;
}

const MiB = 1024 * 1024;
/** Crosses two 5 MiB part edges (the S3 store's test part size). */
const LARGE = 12 * MiB;
/** Odd sizes, so chunk edges never line up with a part, a buffer or each other. */
const CHUNK_SIZES = [1, 65_537, 4_093, 1_048_583, 7, 333_331];
const LONG = 120_000;

function newRef(): BlobRef {
  return { userId: 'alice', sessionId: newObjectId(), fileId: newObjectId() };
}

function chunked(bytes: Buffer): Readable {
  function* pieces(): Generator<Buffer> {
    for (let offset = 0, i = 0; offset < bytes.length; i += 1) {
      const size = CHUNK_SIZES[i % CHUNK_SIZES.length]!;
      yield bytes.subarray(offset, offset + size);
      offset += size;
    }
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** Gives `bytes` up to `failAt`, then fails the way a client that goes away does. */
function failingSource(bytes: Buffer, failAt: number, how: 'error' | 'destroy'): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= failAt) {
        if (how === 'error') this.destroy(new Error('the client went away'));
        else this.destroy();
        return;
      }
      const size = Math.min(64 * 1024 + 3, failAt - offset);
      this.push(bytes.subarray(offset, offset + size));
      offset += size;
    },
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Length and digest: equal bytes, with a readable failure instead of a 12 MiB diff. */
function fingerprint(bytes: Buffer): string {
  return `${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`;
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Polls `check` until it holds or `timeoutMs` passes; the last result either way. */
async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

export function describeBlobStoreContract(name: string, open: () => Promise<BlobStoreUnderTest>): void {
  describe(`${name}: the BlobStore contract`, () => {
    let t: BlobStoreUnderTest;

    beforeEach(async () => {
      t = await open();
    });

    afterEach(async () => {
      await t.close();
    });

    async function putBytes(bytes: Buffer): Promise<BlobRef> {
      const ref = newRef();
      await t.blobs.put(ref, chunked(bytes));
      return ref;
    }

    async function readBack(ref: BlobRef, range?: { start: number; end: number }): Promise<{ size: number; bytes: Buffer }> {
      const opened = await t.blobs.open(ref);
      if (opened === null) throw new Error('the blob is missing');
      return { size: opened.size, bytes: await readAll(range ? opened.stream(range) : opened.stream()) };
    }

    test('an empty file comes back empty, with size 0', async () => {
      const ref = await putBytes(Buffer.alloc(0));
      const back = await readBack(ref);
      expect(back.size).toBe(0);
      expect(back.bytes.length).toBe(0);
    });

    test('a one-byte file comes back exactly', async () => {
      const ref = await putBytes(Buffer.from([0xa5]));
      const back = await readBack(ref);
      expect(back.size).toBe(1);
      expect([...back.bytes]).toEqual([0xa5]);
    });

    test(
      'a 12 MiB file streamed in odd-sized chunks comes back byte for byte, and the put leaves only the blob',
      async () => {
        const bytes = randomBytes(LARGE);
        const ref = await putBytes(bytes);
        const back = await readBack(ref);
        expect(back.size).toBe(LARGE);
        expect(fingerprint(back.bytes)).toBe(fingerprint(bytes));
        const left = await t.leftovers();
        expect(left).toHaveLength(1);
        expect(left[0]).toContain(ref.fileId);
      },
      LONG,
    );

    test(
      'a range is exactly bytes start..end inclusive: the first byte, a middle across a part edge, the last byte, the whole',
      async () => {
        const bytes = randomBytes(LARGE);
        const ref = await putBytes(bytes);
        const ranges = [
          { start: 0, end: 0 },
          { start: 5 * MiB - 10, end: 5 * MiB + 9 },
          { start: LARGE - 1, end: LARGE - 1 },
          { start: 0, end: LARGE - 1 },
        ];
        for (const range of ranges) {
          const back = await readBack(ref, range);
          expect(back.size).toBe(LARGE);
          expect(fingerprint(back.bytes)).toBe(fingerprint(bytes.subarray(range.start, range.end + 1)));
        }
      },
      LONG,
    );

    test('a ref that was never put opens as null', async () => {
      expect(await t.blobs.open(newRef())).toBeNull();
    });

    test('after a delete the ref opens as null and nothing is left; deleting again, or a ref never put, is fine', async () => {
      const ref = await putBytes(randomBytes(100_000));
      await t.blobs.delete(ref);
      expect(await t.blobs.open(ref)).toBeNull();
      await t.blobs.delete(ref);
      await t.blobs.delete(newRef());
      expect(await t.leftovers()).toEqual([]);
    });

    test.each(['error', 'destroy'] as const)(
      'a put whose source fails part-way (%s, after two 5 MiB parts) rejects and leaves nothing',
      async (how) => {
        const ref = newRef();
        const source = failingSource(randomBytes(LARGE), 11 * MiB, how);
        const putting = t.blobs.put(ref, source);
        if (how === 'error') await expect(putting).rejects.toThrow('the client went away');
        else await expect(putting).rejects.toBeDefined();
        expect(source.destroyed).toBe(true);
        expect(await t.leftovers()).toEqual([]);
        expect(await t.blobs.open(ref)).toBeNull();
      },
      LONG,
    );

    test(
      'bytes are not visible until their put resolves',
      async () => {
        const ref = newRef();
        const bytes = randomBytes(6 * MiB + 5);
        let sent = 0;
        let allTaken: () => void = () => undefined;
        const taken = new Promise<void>((resolve) => (allTaken = resolve));
        // Offers all but the last 5 bytes; asked for more after that, the store has taken them.
        const source = new Readable({
          read() {
            if (sent === bytes.length - 5) {
              allTaken();
              return;
            }
            const size = Math.min(256 * 1024, bytes.length - 5 - sent);
            this.push(bytes.subarray(sent, sent + size));
            sent += size;
          },
        });
        const putting = t.blobs.put(ref, source);
        await taken;
        expect(await t.blobs.open(ref)).toBeNull();
        source.push(bytes.subarray(sent));
        source.push(null);
        await putting;
        expect(fingerprint((await readBack(ref)).bytes)).toBe(fingerprint(bytes));
      },
      LONG,
    );

    test(
      'an opened blob closed without streaming, or dropped part-way through a stream, lets go of what it holds',
      async () => {
        const ref = await putBytes(randomBytes(3 * MiB));
        const before = openDescriptors();
        // More than a connection pool holds (the SDK's is 50): a leak would make an open wait for ever.
        for (let i = 0; i < 64; i += 1) {
          const opened = await t.blobs.open(ref);
          if (opened === null) throw new Error('the blob is missing');
          if (i % 4 === 3) {
            const stream = opened.stream(i % 8 === 3 ? undefined : { start: 1, end: 2 * MiB });
            await new Promise((resolve, reject) => stream.once('data', resolve).once('error', reject));
            stream.destroy();
          } else {
            await opened.close();
          }
        }
        expect((await readBack(ref)).bytes.length).toBe(3 * MiB);
        // Pooled keep-alive connections may stay; one per open would not.
        expect(await eventually(() => openDescriptors() <= before + 6, 10_000)).toBe(true);
      },
      LONG,
    );

    test('two puts at once each store their own bytes', async () => {
      const one = randomBytes(MiB + 1);
      const two = randomBytes(MiB + 2);
      const [refOne, refTwo] = await Promise.all([putBytes(one), putBytes(two)]);
      expect(fingerprint((await readBack(refOne)).bytes)).toBe(fingerprint(one));
      expect(fingerprint((await readBack(refTwo)).bytes)).toBe(fingerprint(two));
    });
  });
}
