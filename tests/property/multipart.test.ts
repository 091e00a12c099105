/**
 * Multipart uploads: random part names, types, file names and bytes, truncated bodies,
 * missing or wrong boundaries. Every answer is 201 or a 4xx problem; after a 4xx nothing
 * partial is left (usage and file list unchanged); after a 201 exactly the files sent are
 * listed and served, byte for byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { SAMPLES } from '../helpers/multipart';
import { expectClientOrSuccess, runs, startPropertyApp, type PropertyApp } from './support';

let p: PropertyApp;
let alice: { Authorization: string };
let session: string;

const MAX_UPLOAD_BYTES = 2048;
const MAX_FILES = 3;

beforeAll(async () => {
  p = await startPropertyApp({ MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES), MAX_FILES_PER_UPLOAD: String(MAX_FILES) });
  alice = p.auth('alice');
  const created = await p.send({ method: 'POST', path: '/api/v1/sessions', headers: { ...alice, 'Content-Type': 'application/json' }, body: '{"title":"uploads"}' });
  session = (created.json as { id: string }).id;
});
afterAll(() => p.close());

interface GeneratedPart {
  field: string;
  filename: string | undefined;
  contentType: string | undefined;
  data: Buffer;
}

const TYPES = ['text/plain', 'text/csv', 'application/json', 'text/markdown', 'application/pdf', 'image/png', 'image/jpeg', 'image/gif', 'image/webp'];

const randomPart: fc.Arbitrary<GeneratedPart> = fc.record({
  field: fc.oneof({ weight: 8, arbitrary: fc.constant('file') }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }),
  filename: fc.option(
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom('../../etc/passwd', 'C:\\a\\b.txt', 'CON.txt', '..', '.hidden', 'evil\u202etxt.exe', 'a\u2028b.csv', 'x'.repeat(300) + '.csv'),
    ),
    { nil: undefined, freq: 6 },
  ),
  contentType: fc.option(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...TYPES) },
      { weight: 1, arbitrary: fc.constantFrom('application/x-msdownload', 'text/html', 'IMAGE/PNG', 'text/plain; charset=utf-8', 'image/svg+xml', '') },
      { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
    ),
    { nil: undefined, freq: 6 },
  ),
  data: fc.oneof(
    fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
    fc.string({ unit: 'grapheme', maxLength: 400 }).map((s) => Buffer.from(s)),
    fc
      .tuple(fc.constantFrom(...Object.values(SAMPLES)), fc.integer({ min: 0, max: MAX_UPLOAD_BYTES + 20 }))
      .map(([head, extra]) => Buffer.concat([head, Buffer.alloc(Math.max(0, extra - head.length), 0x41)])),
  ),
});

/** A part a browser would send: a declared type its bytes match, a plain file name. */
const SAMPLE_OF: Record<string, Buffer> = {
  'image/png': SAMPLES.png,
  'image/jpeg': SAMPLES.jpeg,
  'image/gif': SAMPLES.gif,
  'image/webp': SAMPLES.webp,
  'application/pdf': SAMPLES.pdf,
  'text/csv': SAMPLES.csv,
};
const wellFormedPart: fc.Arbitrary<GeneratedPart> = fc.oneof(
  fc.record({
    field: fc.constant('file'),
    filename: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map((s) => `${s.replace(/["\r\n]/g, '')}.bin`),
    contentType: fc.constantFrom(...Object.keys(SAMPLE_OF)),
    data: fc.uint8Array({ maxLength: 500 }).map((a) => Buffer.from(a)),
  }).map((part) => ({ ...part, data: Buffer.concat([SAMPLE_OF[part.contentType!]!, part.data]).subarray(0, MAX_UPLOAD_BYTES) })),
  fc.record({
    field: fc.constant('file'),
    filename: fc.constantFrom('notes.txt', 'read me.md', 'données.json', 'Ω.txt'),
    contentType: fc.constantFrom('text/plain', 'text/markdown', 'application/json', undefined),
    data: fc.string({ unit: 'grapheme', maxLength: 300 }).map((s) => Buffer.from(s.replace(/\0/g, ''))),
  }),
);

const partArb = fc.oneof({ weight: 2, arbitrary: wellFormedPart }, { weight: 1, arbitrary: randomPart });

type Framing =
  | { kind: 'complete' }
  | { kind: 'no-closing-boundary' }
  | { kind: 'cut'; fraction: number }
  | { kind: 'no-boundary-parameter' }
  | { kind: 'wrong-boundary' }
  | { kind: 'content-type'; value: string | undefined };

const framingArb: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Framing>({ kind: 'complete' }) },
  { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'no-closing-boundary' }) },
  { weight: 2, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map<Framing>((fraction) => ({ kind: 'cut', fraction })) },
  { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'no-boundary-parameter' }) },
  { weight: 1, arbitrary: fc.constant<Framing>({ kind: 'wrong-boundary' }) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, 'text/plain', 'application/json', 'multipart/mixed; boundary=x').map<Framing>((value) => ({ kind: 'content-type', value })) },
);

/** Builds the body byte by byte, raw file names and all. */
function build(parts: GeneratedPart[], framing: Framing): { contentType: string | undefined; body: Buffer } {
  const boundary = `----sv-prop-${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let disposition = `form-data; name="${part.field}"`;
    if (part.filename !== undefined) disposition += `; filename="${part.filename}"`;
    let head = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n`;
    if (part.contentType !== undefined) head += `Content-Type: ${part.contentType}\r\n`;
    chunks.push(Buffer.from(`${head}\r\n`, 'utf8'), part.data, Buffer.from('\r\n'));
  }
  if (framing.kind !== 'no-closing-boundary') chunks.push(Buffer.from(`--${boundary}--\r\n`));
  let body = Buffer.concat(chunks);
  let contentType: string | undefined = `multipart/form-data; boundary=${boundary}`;
  if (framing.kind === 'cut') body = body.subarray(0, Math.floor(body.length * framing.fraction));
  if (framing.kind === 'no-boundary-parameter') contentType = 'multipart/form-data';
  if (framing.kind === 'wrong-boundary') contentType = `multipart/form-data; boundary=${boundary}x`;
  if (framing.kind === 'content-type') contentType = framing.value;
  return { contentType, body };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface FileItem {
  id: string;
  name: string;
  size: number;
  sha256: string;
}

async function state(): Promise<{ usage: unknown; files: FileItem[] }> {
  const me = await p.send({ method: 'GET', path: '/api/v1/me', headers: alice });
  // One page holds them all: at most 4 files per run, well under the page limit.
  const files = await p.send({ method: 'GET', path: `/api/v1/sessions/${session}/files?limit=1000`, headers: alice });
  expect(me.status).toBe(200);
  expect(files.status).toBe(200);
  const page = files.json as { items: FileItem[]; nextCursor?: string | null };
  expect(page.nextCursor ?? null).toBeNull();
  return { usage: (me.json as { usage: unknown }).usage, files: page.items };
}

describe('multipart uploads', () => {
  it('are 201 with exactly the files sent, or a 4xx that leaves nothing behind', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(partArb, { maxLength: MAX_FILES + 1 }), framingArb, async (parts, framing) => {
        const before = await state();
        const { contentType, body } = build(parts, framing);
        const res = await p.send({
          method: 'POST',
          path: `/api/v1/sessions/${session}/files`,
          headers: { ...alice, ...(contentType === undefined ? {} : { 'Content-Type': contentType }) },
          body,
        });
        const what = `upload of ${parts.length} part(s), ${framing.kind} -> ${res.status} ${res.text.slice(0, 200)}`;
        expectClientOrSuccess(res, what);
        expect([201, 400, 413, 415]).toContain(res.status);
        const after = await state();
        if (res.status !== 201) {
          // Nothing partial: the same usage and the same list, record for record.
          expect(after).toEqual(before);
          return;
        }
        accepted += 1;
        const items = (res.json as { items: FileItem[] }).items;
        expect(items.length).toBeGreaterThan(0);
        expect(after.files).toEqual([...before.files, ...items]);
        // Every stored file is one of the parts sent, in request order, whole.
        let next = 0;
        for (const item of items) {
          while (next < parts.length && sha256(parts[next]!.data) !== item.sha256) next += 1;
          expect(next).toBeLessThan(parts.length);
          const sent = parts[next]!;
          next += 1;
          expect(item.size).toBe(sent.data.length);
          expect(item.size).toBeLessThanOrEqual(MAX_UPLOAD_BYTES);
          // eslint-disable-next-line no-control-regex -- names must hold no control characters
          expect(item.name).not.toMatch(/[\u0000-\u001f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069/\\]/);
          const download = await p.send({ method: 'GET', path: `/api/v1/sessions/${session}/files/${item.id}`, headers: alice });
          expect(download.status).toBe(200);
          expect(download.body.equals(sent.data)).toBe(true);
        }
      }),
      runs(150),
    );
    // The generators do reach the success path, or the properties above say little.
    expect(accepted).toBeGreaterThan(5);
    // With no request in flight, no staged temporary is left over from any refused upload.
    expect(await readdir(path.join(p.t.dataDir, '.staging'))).toEqual([]);
  });
});
