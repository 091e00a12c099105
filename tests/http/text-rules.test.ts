/**
 * Invisible characters that change how text is shown: session titles refuse them, uploaded
 * file names (client metadata) have them stripped.
 */
import request from 'supertest';
import { sanitizeFileName } from '../../src/sessions/upload-rules';
import { filePart, multipart } from '../helpers/multipart';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

const INVISIBLE: Array<[string, string]> = [
  ['U+202A LEFT-TO-RIGHT EMBEDDING', '\u202a'],
  ['U+202B RIGHT-TO-LEFT EMBEDDING', '\u202b'],
  ['U+202C POP DIRECTIONAL FORMATTING', '\u202c'],
  ['U+202D LEFT-TO-RIGHT OVERRIDE', '\u202d'],
  ['U+202E RIGHT-TO-LEFT OVERRIDE', '\u202e'],
  ['U+2066 LEFT-TO-RIGHT ISOLATE', '\u2066'],
  ['U+2067 RIGHT-TO-LEFT ISOLATE', '\u2067'],
  ['U+2068 FIRST STRONG ISOLATE', '\u2068'],
  ['U+2069 POP DIRECTIONAL ISOLATE', '\u2069'],
  ['U+061C ARABIC LETTER MARK', '\u061c'],
  ['U+200E LEFT-TO-RIGHT MARK', '\u200e'],
  ['U+200F RIGHT-TO-LEFT MARK', '\u200f'],
  ['U+2028 LINE SEPARATOR', '\u2028'],
  ['U+2029 PARAGRAPH SEPARATOR', '\u2029'],
];

const TITLE_MESSAGE =
  'title: must not contain control characters, invisible direction controls (U+202A-U+202E, U+2066-U+2069, U+061C, U+200E, U+200F) or line/paragraph separators (U+2028, U+2029)';

describe('file names', () => {
  it.each(INVISIBLE)('strips %s from a file name', (_name, ch) => {
    expect(sanitizeFileName(`invoice${ch}txt.exe`)).toBe('invoicetxt.exe');
    expect(sanitizeFileName(`${ch}${ch}report.csv${ch}`)).toBe('report.csv');
    expect(sanitizeFileName(ch)).toBe('file');
  });

  it('keeps right-to-left letters and everything visible', () => {
    expect(sanitizeFileName('שלום.txt')).toBe('שלום.txt');
    expect(sanitizeFileName('تقرير.pdf')).toBe('تقرير.pdf');
  });
});

forEachBackend((backend) => {
  let t: TestApp;
  let alice: { Authorization: string };

  beforeAll(async () => {
    t = await startTestApp({}, { backend });
    alice = bearer(t.token('alice'));
  });
  afterAll(() => t.close());

  describe('session titles', () => {
    let id: string;
    beforeAll(async () => {
      id = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'plain' }).expect(201)).body.id;
    });

    it.each(INVISIBLE)('refuses %s inside, at the start and at the end, on create and on patch', async (_name, ch) => {
      const count = async () => (await request(t.app).get('/api/v1/me').set(alice).expect(200)).body.usage.sessions as number;
      const before = await count();
      for (const title of [`invoice${ch}txt.exe`, `${ch}Plan`, `Plan${ch}`]) {
        const created = await request(t.app).post('/api/v1/sessions').set(alice).send({ title });
        expect(created.status).toBe(400);
        expect(created.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(created.body).toMatchObject({ type: '/problems/bad-request', status: 400, detail: TITLE_MESSAGE });
        const patched = await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).send({ title });
        expect(patched.status).toBe(400);
        expect(patched.body.detail).toBe(TITLE_MESSAGE);
      }
      expect(await count()).toBe(before);
      expect((await request(t.app).get(`/api/v1/sessions/${id}`).set(alice).expect(200)).body).toMatchObject({ title: 'plain', version: 1 });
    });

    it('refuses control characters with the same extended message', async () => {
      const res = await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'a\u0007b' });
      expect(res.status).toBe(400);
      expect(res.body.detail).toBe(TITLE_MESSAGE);
    });

    it('accepts right-to-left text, emoji joined with U+200D, and trims ordinary spaces', async () => {
      for (const title of ['שלום עולם', 'مرحبا بالعالم', '👩‍💻 notes', 'Ünïcödé — “quotes”']) {
        const res = await request(t.app).post('/api/v1/sessions').set(alice).send({ title });
        expect(res.status).toBe(201);
        expect(res.body.title).toBe(title);
      }
      const spaced = await request(t.app).post('/api/v1/sessions').set(alice).send({ title: '  Trip  ' });
      expect(spaced.body.title).toBe('Trip');
    });
  });

  describe('file names', () => {
    it('stores an uploaded file under the stripped name, and serves it so', async () => {
      const id = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'files' }).expect(201)).body.id;
      const raw = 'evil\u202egpj.txt\u2028\u2029\u061c\u200e\u200f\u2066x\u2069.csv';
      const body = multipart([filePart(raw, 'text/csv', 'a,b\n1,2\n')]);
      const res = await request(t.app).post(`/api/v1/sessions/${id}/files`).set(alice).set('Content-Type', body.contentType).send(body.body);
      expect(res.status).toBe(201);
      expect(res.body.items[0].name).toBe('evilgpj.txtx.csv');
      const list = await request(t.app).get(`/api/v1/sessions/${id}/files`).set(alice).expect(200);
      expect(list.body.items.map((f: { name: string }) => f.name)).toEqual(['evilgpj.txtx.csv']);
      const download = await request(t.app).get(`/api/v1/sessions/${id}/files/${res.body.items[0].id}`).set(alice).expect(200);
      expect(download.headers['content-disposition']).toBe('attachment; filename="evilgpj.txtx.csv"; filename*=UTF-8\'\'evilgpj.txtx.csv');
    });
  });
});
