/**
 * Range headers on a download: any header (random strings, numbers of any size, several
 * ranges, odd case and spacing) gets 200, 206 or 416 and nothing else; a 206 body is exactly
 * the slice its Content-Range names, a 200 body the whole file, and a well-formed single
 * range within the file is honoured exactly as RFC 9110 says.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { filePart, multipart } from '../helpers/multipart';
import { expectClientOrSuccess, runs, startPropertyApp, type PropertyApp } from './support';

let p: PropertyApp;
let alice: { Authorization: string };
let session: string;
const files: Array<{ id: string; data: Buffer }> = [];

beforeAll(async () => {
  p = await startPropertyApp();
  alice = p.auth('alice');
  const created = await p.send({ method: 'POST', path: '/api/v1/sessions', headers: { ...alice, 'Content-Type': 'application/json' }, body: '{}' });
  session = (created.json as { id: string }).id;
  for (const size of [0, 1, 2, 17, 1000, 70_000]) {
    // Printable bytes (a text/plain file may not hold NUL), different in every position; the
    // first is a letter, so the content never starts with `#!` (refused as a script).
    const data = Buffer.from(randomBytes(size).map((b, i) => (i === 0 ? 0x61 : 0x21) + (b % (i === 0 ? 26 : 90))));
    const body = multipart([filePart(`f${size}.txt`, 'text/plain', data)]);
    const res = await p.send({ method: 'POST', path: `/api/v1/sessions/${session}/files`, headers: { ...alice, 'Content-Type': body.contentType }, body: body.body });
    expect(res.status).toBe(201);
    files.push({ id: (res.json as { items: Array<{ id: string }> }).items[0]!.id, data });
  }
});
afterAll(() => p.close());

const position = fc.oneof(
  fc.nat({ max: 80_000 }),
  fc.constantFrom(0, 1, 2, 16, 17, 18, 999, 1000, 1001, 69_999, 70_000, 70_001),
  fc.bigInt({ min: 0n, max: 10n ** 30n }),
);
const digits = position.map(String);

/** Headers that look like ranges, and headers that do not. */
const rangeHeader = fc.oneof(
  fc.tuple(digits, digits).map(([a, b]) => `bytes=${a}-${b}`),
  digits.map((a) => `bytes=${a}-`),
  digits.map((n) => `bytes=-${n}`),
  fc.tuple(digits, digits, digits, digits).map(([a, b, c, d]) => `bytes=${a}-${b}, ${c}-${d}`),
  fc
    .tuple(fc.constantFrom('bytes', 'BYTES', 'Bytes', 'items', 'bytes ', ''), fc.constantFrom('=', ' =', '= ', ''), digits, fc.constantFrom('-', ' - ', '--', ''), fc.option(digits, { nil: '' }))
    .map(([unit, eq, a, dash, b]) => `${unit}${eq}${a}${dash}${b}`),
  fc.integer({ min: -100_000, max: 100_000 }).map((n) => `bytes=${n}`),
  fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -1000, max: 1000 })).map(([a, b]) => `bytes=${a}-${b}`),
  // Anything a header value may hold (visible ASCII, space and tab).
  fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => s.replace(/[^\t\x20-\x7e]/g, '')),
  fc.constantFrom('bytes=0-0', 'bytes=-0', 'bytes=0-', 'bytes=', 'bytes=-', 'bytes=1e3-2e3', 'bytes=0x10-0x20', 'bytes=+1-+2', 'bytes=1.5-2.5', `bytes=0-${'9'.repeat(400)}`),
);

/** RFC 9110 14.1.2 for the single, well-formed forms: the slice to serve, or 'unsatisfiable'. */
function expected(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | 'either' {
  const closed = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(header);
  if (closed) {
    const [start, last] = [Number(closed[1]), Number(closed[2])];
    if (last < start) return 'either';
    if (start >= size) return 'unsatisfiable';
    return { start, end: Math.min(last, size - 1) };
  }
  const open = /^bytes=(\d{1,15})-$/.exec(header);
  if (open) {
    const start = Number(open[1]);
    return start >= size ? 'unsatisfiable' : { start, end: size - 1 };
  }
  const suffix = /^bytes=-(\d{1,15})$/.exec(header);
  if (suffix) {
    const n = Number(suffix[1]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  return 'either';
}

describe('Range on a download', () => {
  it('is 200, 206 or 416; a 206 is exactly the named slice; a well-formed range is honoured', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: files.length - 1 }), rangeHeader, async (index, range) => {
        const file = files[index]!;
        const size = file.data.length;
        const res = await p.send({ method: 'GET', path: `/api/v1/sessions/${session}/files/${file.id}`, headers: { ...alice, Range: range } });
        const what = `Range "${range}" on ${size} bytes -> ${res.status} ${String(res.headers['content-range'])}`;
        expectClientOrSuccess(res, what);
        if (![200, 206, 416].includes(res.status)) throw new Error(what);
        if (res.status === 200) expect(res.body.equals(file.data)).toBe(true);
        if (res.status === 416) expect(res.headers['content-range']).toBe(`bytes */${size}`);
        if (res.status === 206) {
          const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range']));
          expect(match).not.toBeNull();
          const [start, end, total] = [Number(match![1]), Number(match![2]), Number(match![3])];
          expect(total).toBe(size);
          expect(start).toBeLessThanOrEqual(end);
          expect(end).toBeLessThan(size);
          expect(res.headers['content-length']).toBe(String(end - start + 1));
          expect(res.body.equals(file.data.subarray(start, end + 1))).toBe(true);
        }
        const want = expected(range, size);
        if (want === 'unsatisfiable') expect(res.status).toBe(416);
        else if (want !== 'either') {
          expect(res.status).toBe(206);
          expect(res.headers['content-range']).toBe(`bytes ${want.start}-${want.end}/${size}`);
        }
      }),
      runs(200),
    );
  });

  it('HEAD with any Range is 200, 206 or 416 too, and sends no body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: files.length - 1 }), rangeHeader, async (index, range) => {
        const file = files[index]!;
        const res = await p.send({ method: 'HEAD', path: `/api/v1/sessions/${session}/files/${file.id}`, headers: { ...alice, Range: range } });
        expectClientOrSuccess(res, `HEAD Range "${range}"`);
        expect([200, 206, 416]).toContain(res.status);
        expect(res.body.length).toBe(0);
      }),
      runs(100),
    );
  });
});
