/**
 * Why downloads build their own `Range` answer and `Content-Disposition` shape rather than
 * take them whole from the modules Express uses (`range-parser`, `content-disposition`): each
 * case where the module's answer differs from RFC 9110 or from what the README promises, next
 * to ours; where they agree; and that the header we send parses back, with the module Express
 * itself uses, to the exact stored name. If a case here starts failing because a module
 * changed, that module may now do the job alone.
 */
import * as disposition from 'content-disposition';
import fc from 'fast-check';
import rangeParser from 'range-parser';
import { contentDisposition, parseRange } from '../../src/http/download';
import { sanitizeFileName } from '../../src/sessions/upload-rules';

const SIZE = 1000;

describe('Range: range-parser against ours, on a 1000-byte file', () => {
  it('refuses a suffix longer than the file (416) where RFC 9110 14.1.2 serves the whole file, as we do', () => {
    expect(rangeParser(SIZE, 'bytes=-5000')).toBe(-1);
    expect(parseRange('bytes=-5000', SIZE)).toEqual({ kind: 'partial', start: 0, end: 999 });
  });

  it('calls a unit it does not know unsatisfiable (416) where RFC 9110 14.2 says to ignore the header', () => {
    expect(rangeParser(SIZE, 'items=5000-6000')).toBe(-1);
    expect(parseRange('items=5000-6000', SIZE)).toEqual({ kind: 'full' });
  });

  it('calls a reversed range unsatisfiable (416) where we send the whole file (files.test.ts)', () => {
    expect(rangeParser(SIZE, 'bytes=9-1')).toBe(-1);
    expect(parseRange('bytes=9-1', SIZE)).toEqual({ kind: 'full' });
  });

  it('keeps the satisfiable member of a list, a 206 of part of it, where the README promises the whole file', () => {
    expect(rangeParser(SIZE, 'bytes=0-1,5000-6000')).toEqual(Object.assign([{ start: 0, end: 1 }], { type: 'bytes' }));
    expect(parseRange('bytes=0-1,5000-6000', SIZE)).toEqual({ kind: 'full' });
  });

  it.each([
    ['bytes=0-9', { kind: 'partial', start: 0, end: 9 }],
    ['bytes=990-', { kind: 'partial', start: 990, end: 999 }],
    ['bytes=-10', { kind: 'partial', start: 990, end: 999 }],
    ['bytes=500-5000', { kind: 'partial', start: 500, end: 999 }],
    ['bytes=999-999', { kind: 'partial', start: 999, end: 999 }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=abc', { kind: 'full' }],
  ] as const)('agrees on %s', (header, answer) => {
    const theirs = rangeParser(SIZE, header);
    const asOurs = theirs === -2 ? { kind: 'full' } : theirs === -1 ? { kind: 'unsatisfiable' } : { kind: 'partial', ...theirs[0] };
    expect(asOurs).toEqual(answer);
    expect(parseRange(header, SIZE)).toEqual(answer);
  });
});

describe('Content-Disposition: content-disposition against ours', () => {
  it("gives an ASCII name no filename* and leaves a token unquoted, where ours always has both, the fallback quoted", () => {
    expect(disposition.create('report.csv')).toBe('attachment; filename=report.csv');
    expect(contentDisposition('report.csv')).toBe(`attachment; filename="report.csv"; filename*=UTF-8''report.csv`);
  });

  it('escapes a quote in the fallback as a quoted-pair, where ours replaces it and puts the exact name in filename*', () => {
    expect(disposition.create('a"b.csv')).toBe('attachment; filename="a\\"b.csv"');
    expect(contentDisposition('a"b.csv')).toBe(`attachment; filename="a_b.csv"; filename*=UTF-8''a%22b.csv`);
  });

  it('sends, for any name the upload rules keep, an ASCII header that content-disposition parses back to that exact name', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (raw) => {
        const name = sanitizeFileName(raw);
        const header = contentDisposition(name);
        expect(header).toMatch(/^[\x20-\x7e]+$/);
        const parsed = disposition.parse(header);
        expect(parsed.type).toBe('attachment');
        expect(parsed.parameters.filename).toBe(name);
      }),
      { numRuns: 500 },
    );
  });
});
