/**
 * Uploads, listings, downloads and deletes of session files, through the real app on each
 * backend under test, with multipart bodies built byte by byte in the test. What these leave
 * on disk is the fs backend's concern: tests/storage/fs/files-on-disk.test.ts.
 */
import { createHash } from 'node:crypto';
import request from 'supertest';
import { CLIENT_EXTENDED_FILE_NAMES, CLIENT_FILE_NAMES, REFUSED_BY_CONTENT } from '../helpers/hostile-inputs';
import { filePart, multipart, SAMPLES, type Multipart, type Part } from '../helpers/multipart';
import { FILE_OVERHEAD_BYTES } from '../../src/sessions/ports';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

let t: TestApp;
let alice: { Authorization: string };

async function newSession(who = alice): Promise<string> {
  const res = await request(t.app).post('/api/v1/sessions').set(who).send({ title: 'files' }).expect(201);
  return res.body.id as string;
}

function send(sessionId: string, body: Multipart, who = alice) {
  return request(t.app)
    .post(`/api/v1/sessions/${sessionId}/files`)
    .set(who)
    .set('Content-Type', body.contentType)
    .send(body.body);
}

function upload(sessionId: string, parts: Part[], who = alice) {
  return send(sessionId, multipart(parts), who);
}

function download(sessionId: string, fileId: string, who = alice) {
  return request(t.app)
    .get(`/api/v1/sessions/${sessionId}/files/${fileId}`)
    .set(who)
    .buffer(true)
    .parse((res, done) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(null, Buffer.concat(chunks)));
    });
}

async function usageBytes(who = alice): Promise<number> {
  return (await request(t.app).get('/api/v1/me').set(who).expect(200)).body.usage.bytes as number;
}

async function listNames(sessionId: string): Promise<string[]> {
  const res = await request(t.app).get(`/api/v1/sessions/${sessionId}/files`).set(alice).expect(200);
  return (res.body.items as Array<{ name: string }>).map((f) => f.name);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

forEachBackend((backend) => {
  beforeEach(async () => {
    t = await startTestApp({ MAX_UPLOAD_BYTES: String(64 * 1024), MAX_FILES_PER_UPLOAD: '3' }, { backend });
    alice = bearer(t.token('alice'));
  });
  afterEach(() => t.close());

  describe('upload, list, download', () => {
    it('stores a file and gives back the same bytes with its metadata', async () => {
      const sessionId = await newSession();
      const res = await upload(sessionId, [filePart('report.csv', 'text/csv', SAMPLES.csv)]);
      expect(res.status).toBe(201);
      expect(res.body.items).toEqual([
        {
          id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          name: 'report.csv',
          size: SAMPLES.csv.length,
          contentType: 'text/csv',
          sha256: sha256(SAMPLES.csv),
          createdAt: expect.any(String),
        },
      ]);
      const [file] = res.body.items;
      const list = await request(t.app).get(`/api/v1/sessions/${sessionId}/files`).set(alice).expect(200);
      expect(list.body).toEqual({ items: [file], nextCursor: null });

      const got = await download(sessionId, file.id);
      expect(got.status).toBe(200);
      expect(Buffer.compare(got.body as Buffer, SAMPLES.csv)).toBe(0);
      expect(got.headers['content-type']).toBe('text/csv');
      expect(got.headers['content-length']).toBe(String(SAMPLES.csv.length));
      expect(got.headers['etag']).toBe(`"sha256-${sha256(SAMPLES.csv)}"`);
      expect(got.headers['x-content-type-options']).toBe('nosniff');
      expect(got.headers['content-security-policy']).toMatch(/sandbox/);
      expect(got.headers['content-security-policy']).toMatch(/default-src 'none'/);
      expect(got.headers['content-disposition']).toBe(`attachment; filename="report.csv"; filename*=UTF-8''report.csv`);
      expect(got.headers['accept-ranges']).toBe('bytes');
    });

    it('stores every part of a request, in request order, each with its own id', async () => {
      const sessionId = await newSession();
      const big = Buffer.alloc(40_000, 'x');
      const res = await upload(sessionId, [
        filePart('big.txt', 'text/plain', big),
        filePart('p.png', 'image/png', SAMPLES.png),
        filePart('d.pdf', 'application/pdf', SAMPLES.pdf),
      ]);
      expect(res.status).toBe(201);
      expect(res.body.items.map((f: { name: string }) => f.name)).toEqual(['big.txt', 'p.png', 'd.pdf']);
      expect(new Set(res.body.items.map((f: { id: string }) => f.id)).size).toBe(3);
      for (const [file, bytes] of [[res.body.items[0], big], [res.body.items[1], SAMPLES.png], [res.body.items[2], SAMPLES.pdf]] as const) {
        const got = await download(sessionId, file.id);
        expect(sha256(got.body as Buffer)).toBe(file.sha256);
        expect(sha256(got.body as Buffer)).toBe(sha256(bytes));
      }
      expect(await listNames(sessionId)).toEqual(['big.txt', 'p.png', 'd.pdf']);
    });

    it('accepts every signed type whose bytes carry its signature', async () => {
      const sessionId = await newSession();
      for (const [name, type, data] of [
        ['a.png', 'image/png', SAMPLES.png],
        ['a.jpg', 'image/jpeg', SAMPLES.jpeg],
        ['a.gif', 'image/gif', SAMPLES.gif],
        ['a.webp', 'image/webp', SAMPLES.webp],
        ['a.pdf', 'application/pdf', SAMPLES.pdf],
        ['a.json', 'application/json', Buffer.from('{"a":1}')],
        ['a.md', 'text/markdown; charset=utf-8', Buffer.from('# title\n')],
        ['empty.txt', 'text/plain', Buffer.alloc(0)],
      ] as const) {
        const res = await upload(sessionId, [filePart(name, type, data)]);
        expect({ name, status: res.status }).toEqual({ name, status: 201 });
      }
      expect(await listNames(sessionId)).toHaveLength(8);
    });

    it('stores the parameter-free, lower-cased type', async () => {
      const sessionId = await newSession();
      const res = await upload(sessionId, [filePart('a.csv', 'Text/CSV; charset=UTF-8', SAMPLES.csv)]);
      expect(res.body.items[0].contentType).toBe('text/csv');
    });

    it('answers a browser FormData upload (supertest attach) the same way', async () => {
      const sessionId = await newSession();
      const res = await request(t.app)
        .post(`/api/v1/sessions/${sessionId}/files`)
        .set(alice)
        .attach('file', SAMPLES.png, { filename: 'photo.png', contentType: 'image/png' });
      expect(res.status).toBe(201);
      expect(res.body.items[0]).toMatchObject({ name: 'photo.png', size: SAMPLES.png.length });
    });
  });

  describe('refused uploads leave nothing behind', () => {
    async function expectNothingStored(sessionId: string, usageBefore: number) {
      expect(await listNames(sessionId)).toEqual([]);
      expect(await usageBytes()).toBe(usageBefore);
    }

    it.each(REFUSED_BY_CONTENT)('415 for %s, naming the part and why', async (_name, type, data, why) => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const res = await upload(sessionId, [{ filename: 'evil.bin', contentType: type, data }]);
      expect(res.status).toBe(415);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.detail).toMatch(/^Part 1 \("evil.bin"\)/);
      expect(res.body.detail).toMatch(why);
      await expectNothingStored(sessionId, before);
    });

    it('refuses the whole request when its second part is an executable', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const res = await upload(sessionId, [filePart('good.csv', 'text/csv', SAMPLES.csv), filePart('bad.png', 'image/png', SAMPLES.elf)]);
      expect(res.status).toBe(415);
      expect(res.body.detail).toMatch(/^Part 2 \("bad.png"\)/);
      await expectNothingStored(sessionId, before);
    });

    it('413 for a part over MAX_UPLOAD_BYTES after an accepted part, storing neither', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const res = await upload(sessionId, [
        filePart('ok.txt', 'text/plain', Buffer.alloc(1000, 'a')),
        filePart('huge.txt', 'text/plain', Buffer.alloc(64 * 1024 + 1, 'b')),
      ]);
      expect(res.status).toBe(413);
      expect(res.body).toMatchObject({ status: 413, limit: 'MAX_UPLOAD_BYTES' });
      await expectNothingStored(sessionId, before);
    });

    it('accepts a part of exactly MAX_UPLOAD_BYTES', async () => {
      const sessionId = await newSession();
      const res = await upload(sessionId, [filePart('edge.txt', 'text/plain', Buffer.alloc(64 * 1024, 'e'))]);
      expect(res.status).toBe(201);
      expect(res.body.items[0].size).toBe(64 * 1024);
    });

    it('413 for more parts than MAX_FILES_PER_UPLOAD', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const parts = [1, 2, 3, 4].map((i) => filePart(`${i}.txt`, 'text/plain', `file ${i}`));
      const res = await upload(sessionId, parts);
      expect(res.status).toBe(413);
      expect(res.body.limit).toBe('MAX_FILES_PER_UPLOAD');
      await expectNothingStored(sessionId, before);
    });

    it('400 for a truncated body (no closing boundary)', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const body = multipart([filePart('a.txt', 'text/plain', Buffer.alloc(5000, 'a'))], { truncate: true });
      const res = await send(sessionId, body);
      expect(res.status).toBe(400);
      expect(res.body.detail).toMatch(/malformed or incomplete/);
      await expectNothingStored(sessionId, before);
    });

    it('400 for a part cut off in the middle of its bytes', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const whole = multipart([filePart('a.txt', 'text/plain', Buffer.alloc(5000, 'a'))]);
      const res = await send(sessionId, { contentType: whole.contentType, body: whole.body.subarray(0, 2000) });
      expect(res.status).toBe(400);
      await expectNothingStored(sessionId, before);
    });

    it('400 for a text field, a file under another field name, or no file at all', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const field = await upload(sessionId, [{ field: 'note', data: 'hello' }, filePart('a.txt', 'text/plain', 'x')]);
      expect(field.status).toBe(400);
      const otherName = await upload(sessionId, [{ field: 'attachment', filename: 'a.txt', contentType: 'text/plain', data: 'x' }]);
      expect(otherName.status).toBe(400);
      expect(otherName.body.detail).toMatch(/"file"/);
      const none = await send(sessionId, multipart([]));
      expect(none.status).toBe(400);
      await expectNothingStored(sessionId, before);
    });

    it('415 for a body that is not multipart, 400 for one without a boundary', async () => {
      const sessionId = await newSession();
      const json = await request(t.app).post(`/api/v1/sessions/${sessionId}/files`).set(alice).send({ file: 'x' });
      expect(json.status).toBe(415);
      const noBoundary = await request(t.app)
        .post(`/api/v1/sessions/${sessionId}/files`)
        .set(alice)
        .set('Content-Type', 'multipart/form-data')
        .send('whatever');
      expect(noBoundary.status).toBe(400);
      expect(await listNames(sessionId)).toEqual([]);
    });

    function rawPart(headerLines: string): string {
      return `--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n${headerLines}\r\n\r\nhello\r\n--xyz--\r\n`;
    }
    const sendRaw = (sessionId: string, body: string) =>
      request(t.app).post(`/api/v1/sessions/${sessionId}/files`).set(alice).set('Content-Type', 'multipart/form-data; boundary=xyz').send(body);

    it('ignores part headers past the header-pair limit', async () => {
      const sessionId = await newSession();
      const res = await sendRaw(sessionId, rawPart(Array.from({ length: 40 }, (_, i) => `X-H${i}: v`).join('\r\n')));
      expect(res.status).toBe(201);
      expect(res.body.items[0]).toMatchObject({ name: 'a.txt', size: 5 });
    });

    it('400 for a part header block too large to be real, storing nothing', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const res = await sendRaw(sessionId, rawPart(`X-Big: ${'b'.repeat(100_000)}`));
      expect(res.status).toBe(400);
      await expectNothingStored(sessionId, before);
    });

    it('404 for an upload into a session that does not exist, storing nothing', async () => {
      const before = await usageBytes();
      const res = await upload('6f1c2b9a-4b1e-4a57-9d7a-2f0f5f1f0c11', [filePart('a.txt', 'text/plain', 'x')]);
      expect(res.status).toBe(404);
      expect(await usageBytes()).toBe(before);
    });

    it('needs a token', async () => {
      const sessionId = await newSession();
      const body = multipart([filePart('a.txt', 'text/plain', 'x')]);
      const res = await request(t.app).post(`/api/v1/sessions/${sessionId}/files`).set('Content-Type', body.contentType).send(body.body);
      expect(res.status).toBe(401);
      expect(await listNames(sessionId)).toEqual([]);
    });
  });

  describe('file names are metadata only', () => {
    async function storedName(part: Omit<Part, 'contentType' | 'data'>): Promise<{ name: string; disposition: string }> {
      const sessionId = await newSession();
      const res = await upload(sessionId, [{ ...part, contentType: 'text/plain', data: 'content' }]);
      expect(res.status).toBe(201);
      const file = res.body.items[0];
      const got = await download(sessionId, file.id);
      expect(got.status).toBe(200);
      return { name: file.name, disposition: got.headers['content-disposition'] as string };
    }

    it.each(CLIENT_FILE_NAMES)('%j is stored as %j', async (raw, expected) => {
      const { name } = await storedName({ filename: raw });
      expect(name).toBe(expected);
    });

    it.each(CLIENT_EXTENDED_FILE_NAMES)('the extended name %j is stored as %j', async (encoded, expected) => {
      const { name } = await storedName({ filename: 'fallback', filenameStar: encoded });
      expect(name).toBe(expected);
    });

    it('400 for a raw NUL (a\\u0000b) in the part header, storing nothing', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const res = await upload(sessionId, [filePart('a\u0000b', 'text/plain', 'content')]);
      expect(res.status).toBe(400);
      expect(await listNames(sessionId)).toEqual([]);
      expect(await usageBytes()).toBe(before);
    });

    it('400 for a part with an empty file name (what a browser sends for an empty file input)', async () => {
      const sessionId = await newSession();
      const res = await upload(sessionId, [filePart('', 'text/plain', 'content')]);
      expect(res.status).toBe(400);
      expect(await listNames(sessionId)).toEqual([]);
    });

    it('NFC-normalizes a decomposed name', async () => {
      const decomposed = 're\u0301sume\u0301.txt';
      const { name } = await storedName({ filename: decomposed });
      expect(name).toBe('r\u00e9sum\u00e9.txt');
      expect(name).toBe(decomposed.normalize('NFC'));
    });

    it('bounds a 1,000-character name and keeps its extension', async () => {
      const { name, disposition } = await storedName({ filename: `${'n'.repeat(996)}.csv` });
      expect([...name]).toHaveLength(200);
      expect(name.endsWith('.csv')).toBe(true);
      expect(disposition.length).toBeLessThan(1000);
    });

    it('carries a non-ASCII name in both header forms', async () => {
      const { disposition } = await storedName({ filename: 'résumé 数据.txt' });
      expect(disposition).toBe(
        `attachment; filename="r_sum_ __.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E6%95%B0%E6%8D%AE.txt`,
      );
    });

    it('keeps quotes, CR and LF out of the header whatever the name carries', async () => {
      // The extended parameter lets a client send any byte in the name, CR/LF included.
      const { name, disposition } = await storedName({ filename: 'x', filenameStar: 'a%22b%0D%0AX-Injected%3A%201%0D%0A.txt' });
      expect(name).toBe('a"bX-Injected: 1.txt');
      expect(disposition).not.toMatch(/[\r\n]/);
      const [, quoted] = /filename="([^"]*)";/.exec(disposition) ?? [];
      expect(quoted).toBe('a_bX-Injected: 1.txt');
      expect(disposition).toContain(`filename*=UTF-8''a%22bX-Injected%3A%201.txt`);
    });

    it('takes a quoted name with an escaped quote as metadata too', async () => {
      const { name, disposition } = await storedName({ filename: 'say \\"hi\\".txt' });
      expect(name).toBe('say "hi".txt');
      expect(disposition.startsWith('attachment; filename="say _hi_.txt"; ')).toBe(true);
    });
  });

  describe('active content is never served as such', () => {
    beforeEach(async () => {
      await t.close();
      t = await startTestApp({ UPLOAD_ALLOWED_TYPES: 'text/html,image/svg+xml,application/xml,text/javascript,text/plain' }, { backend });
      alice = bearer(t.token('alice'));
    });

    it.each([
      ['page.html', 'text/html', '<script>alert(document.cookie)</script>'],
      ['pic.svg', 'image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'],
      ['data.xml', 'application/xml', '<?xml version="1.0"?><x/>'],
      ['code.js', 'text/javascript', 'alert(1)'],
    ])('%s (%s) downloads as an octet-stream attachment in a sandbox', async (name, type, content) => {
      const sessionId = await newSession();
      const res = await upload(sessionId, [filePart(name, type, content)]);
      expect(res.status).toBe(201);
      expect(res.body.items[0].contentType).toBe(type);
      const got = await download(sessionId, res.body.items[0].id);
      expect(got.headers['content-type']).toBe('application/octet-stream');
      expect(got.headers['content-disposition']).toMatch(/^attachment;/);
      expect(got.headers['content-security-policy']).toMatch(/sandbox/);
      expect(got.headers['x-content-type-options']).toBe('nosniff');
      expect((got.body as Buffer).toString('utf8')).toBe(content);
    });
  });

  describe('ranges and conditional downloads', () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    let sessionId: string;
    let fileId: string;
    let etag: string;

    beforeEach(async () => {
      await t.close();
      t = await startTestApp({ UPLOAD_ALLOWED_TYPES: 'application/octet-stream,text/plain' }, { backend });
      alice = bearer(t.token('alice'));
      sessionId = await newSession();
      const res = await upload(sessionId, [filePart('bytes.bin', 'application/octet-stream', data)]);
      fileId = res.body.items[0].id;
      etag = `"sha256-${sha256(data)}"`;
    });

    const get = (headers: Record<string, string>) => {
      const req = download(sessionId, fileId);
      for (const [k, v] of Object.entries(headers)) req.set(k, v);
      return req;
    };

    it.each([
      ['bytes=0-9', 0, 9],
      ['bytes=990-', 990, 999],
      ['bytes=-10', 990, 999],
      ['bytes=-5000', 0, 999],
      ['bytes=500-5000', 500, 999],
      ['bytes=999-999', 999, 999],
    ])('206 for %s', async (range, start, end) => {
      const res = await get({ Range: range });
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/1000`);
      expect(res.headers['content-length']).toBe(String(end - start + 1));
      expect(Buffer.compare(res.body as Buffer, data.subarray(start, end + 1))).toBe(0);
    });

    it.each(['bytes=1000-', 'bytes=5000-6000', 'bytes=-0'])('416 for %s, with the size in Content-Range', async (range) => {
      const res = await get({ Range: range });
      expect(res.status).toBe(416);
      expect(res.headers['content-range']).toBe('bytes */1000');
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    });

    it.each(['bytes=0-1,5-6', 'bytes=9-1', 'items=0-9', 'bytes=abc', 'bytes=-'])('the whole file for %s', async (range) => {
      const res = await get({ Range: range });
      expect(res.status).toBe(200);
      expect(Buffer.compare(res.body as Buffer, data)).toBe(0);
    });

    it('honours If-Range only while the ETag matches', async () => {
      const same = await get({ Range: 'bytes=0-9', 'If-Range': etag });
      expect(same.status).toBe(206);
      const other = await get({ Range: 'bytes=0-9', 'If-Range': '"sha256-other"' });
      expect(other.status).toBe(200);
      expect((other.body as Buffer).length).toBe(1000);
    });

    it('304 for If-None-Match with the current ETag, in a list or as *', async () => {
      for (const value of [etag, `"x", ${etag}`, '*', `W/${etag}`]) {
        const res = await get({ 'If-None-Match': value });
        expect({ value, status: res.status }).toEqual({ value, status: 304 });
        expect(res.headers['etag']).toBe(etag);
      }
      const stale = await get({ 'If-None-Match': '"sha256-other"' });
      expect(stale.status).toBe(200);
    });

    it('416 for any range of an empty file', async () => {
      const empty = await upload(sessionId, [filePart('empty.txt', 'text/plain', '')]);
      const res = await download(sessionId, empty.body.items[0].id).set('Range', 'bytes=0-');
      expect(res.status).toBe(416);
      expect(res.headers['content-range']).toBe('bytes */0');
      const whole = await download(sessionId, empty.body.items[0].id);
      expect(whole.status).toBe(200);
      expect((whole.body as Buffer).length).toBe(0);
    });

    it('answers HEAD with the headers and no body', async () => {
      const res = await request(t.app).head(`/api/v1/sessions/${sessionId}/files/${fileId}`).set(alice);
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe('1000');
      expect(res.headers['etag']).toBe(etag);
    });

    it('answers HEAD with a Range exactly as GET would, headers and status, without the bytes', async () => {
      for (const range of ['bytes=0-9', 'bytes=-10', 'bytes=5000-']) {
        const head = await request(t.app).head(`/api/v1/sessions/${sessionId}/files/${fileId}`).set(alice).set('Range', range);
        const got = await get({ Range: range });
        expect({ range, status: head.status }).toEqual({ range, status: got.status });
        expect(head.headers['content-range']).toBe(got.headers['content-range']);
        if (got.status === 206) expect(head.headers['content-length']).toBe(got.headers['content-length']);
        expect(head.text ?? '').toBe('');
      }
    });

    it.each(['Bytes=0-9', 'BYTES=0-9', ' bytes=0-9 '])('reads the range unit case-insensitively: %j', async (range) => {
      const res = await get({ Range: range });
      expect(res.status).toBe(206);
      expect(res.headers['content-range']).toBe('bytes 0-9/1000');
    });
  });

  describe('delete', () => {
    it('removes the file from the list, the downloads and the usage', async () => {
      const sessionId = await newSession();
      const before = await usageBytes();
      const res = await upload(sessionId, [filePart('a.csv', 'text/csv', SAMPLES.csv), filePart('b.png', 'image/png', SAMPLES.png)]);
      const [a, b] = res.body.items;
      // Each file is charged its bytes plus the fixed overhead of its record.
      expect(await usageBytes()).toBe(before + SAMPLES.csv.length + SAMPLES.png.length + 2 * FILE_OVERHEAD_BYTES);

      await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${a.id}`).set(alice).expect(204);
      expect(await listNames(sessionId)).toEqual(['b.png']);
      expect(await usageBytes()).toBe(before + SAMPLES.png.length + FILE_OVERHEAD_BYTES);
      expect((await download(sessionId, a.id)).status).toBe(404);
      expect((await download(sessionId, b.id)).status).toBe(200);
      expect((await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${a.id}`).set(alice)).status).toBe(404);
    });

    it('a session delete takes its files and their bytes with it', async () => {
      const sessionId = await newSession();
      const empty = await usageBytes();
      const res = await upload(sessionId, [filePart('a.csv', 'text/csv', SAMPLES.csv)]);
      expect(res.status).toBe(201);
      await request(t.app).delete(`/api/v1/sessions/${sessionId}`).set(alice).expect(204);
      expect((await download(sessionId, res.body.items[0].id)).status).toBe(404);
      expect(await usageBytes()).toBeLessThan(empty);
      expect((await request(t.app).get('/api/v1/me').set(alice)).body.usage).toEqual({ sessions: 0, files: 0, bytes: 0 });
    });

    it('DELETE /me erases every file', async () => {
      const sessionId = await newSession();
      const stored = (await upload(sessionId, [filePart('a.csv', 'text/csv', SAMPLES.csv)]).expect(201)).body.items[0];
      await request(t.app).delete('/api/v1/me').set(alice).expect(204);
      expect((await request(t.app).get('/api/v1/me').set(alice)).body.usage).toEqual({ sessions: 0, files: 0, bytes: 0 });
      expect((await download(sessionId, stored.id)).status).toBe(404);
      expect((await request(t.app).get('/api/v1/sessions').set(alice)).body.items).toEqual([]);
    });

    it('malformed file ids are a 404 like missing ones, never a path', async () => {
      const sessionId = await newSession();
      for (const id of ['..', '..%2F..%2Fetc%2Fpasswd', 'files.json', 'a'.repeat(300)]) {
        const res = await request(t.app).get(`/api/v1/sessions/${sessionId}/files/${id}`).set(alice);
        expect({ id, status: res.status }).toEqual({ id, status: 404 });
      }
    });
  });
});
