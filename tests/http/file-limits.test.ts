/**
 * What a user can make the service hold through files, bounded: every file is charged a
 * fixed overhead on top of its bytes, a session holds at most MAX_FILES_PER_SESSION files
 * (exactly, however uploads race), and listings come a page at a time with signed cursors.
 */
import http from 'node:http';
import request from 'supertest';
import { FILE_OVERHEAD_BYTES } from '../../src/sessions/ports';
import { filePart, multipart } from '../helpers/multipart';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

let t: TestApp;
let server: http.Server;
let alice: { Authorization: string };

forEachBackend((backend) => {
  async function start(env: Record<string, string>): Promise<void> {
    t = await startTestApp({ MAX_CONCURRENT_UPLOADS: '100', RATE_LIMIT_MAX: '100000', ...env }, { backend });
    server = http.createServer(t.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    alice = bearer(t.token('alice'));
  }

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await t.close();
  });

  async function newSession(who = alice): Promise<string> {
    return (await request(server).post('/api/v1/sessions').set(who).send({}).expect(201)).body.id as string;
  }

  function upload(sessionId: string, parts: Array<{ name: string; data: Buffer | string }>, who = alice) {
    const body = multipart(parts.map((p) => filePart(p.name, 'text/plain', p.data)));
    return request(server).post(`/api/v1/sessions/${sessionId}/files`).set(who).set('Content-Type', body.contentType).send(body.body);
  }

  async function me() {
    return (await request(server).get('/api/v1/me').set(alice).expect(200)).body as {
      usage: { sessions: number; files: number; bytes: number };
      limits: { filesPerSession: number; fileOverheadBytes: number };
    };
  }

  async function allFiles(sessionId: string, limit: number): Promise<{ names: string[]; pages: number }> {
    const names: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: Record<string, string> = { limit: String(limit), ...(cursor ? { cursor } : {}) };
      const res = await request(server).get(`/api/v1/sessions/${sessionId}/files`).query(query).set(alice).expect(200);
      names.push(...res.body.items.map((f: { name: string }) => f.name));
      cursor = res.body.nextCursor;
      pages += 1;
    } while (cursor);
    return { names, pages };
  }

  describe('file overhead', () => {
    it('charges every file its bytes plus a fixed overhead, and /me says so', async () => {
      await start({});
      const sessionId = await newSession();
      const before = await me();
      await upload(sessionId, [{ name: 'a.txt', data: 'hello' }, { name: 'empty.txt', data: '' }]).expect(201);
      const after = await me();
      expect(after.limits.fileOverheadBytes).toBe(FILE_OVERHEAD_BYTES);
      expect(after.usage.files).toBe(2);
      expect(after.usage.bytes - before.usage.bytes).toBe(5 + 2 * FILE_OVERHEAD_BYTES);
    });

    it('empty files with long names cannot fill the disk: the quota refuses them once their overhead is used up', async () => {
      await start({ USER_QUOTA_BYTES: '8192' });
      const sessionId = await newSession();
      const parts = Array.from({ length: 10 }, (_, i) => ({ name: `${'n'.repeat(190)}-${i}.txt`, data: '' }));
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await upload(sessionId, parts)).status);
      expect(statuses.every((s) => s === 507)).toBe(true);
      // Nothing partial: a refused batch stores none of its parts.
      expect((await me()).usage.files).toBe(0);
      const one = await upload(sessionId, [{ name: 'x.txt', data: '' }]).expect(201);
      expect(one.body.items).toHaveLength(1);
      const usage = (await me()).usage;
      expect(usage.bytes).toBeLessThanOrEqual(8192);
      expect(usage.files).toBe(1);
    });
  });

  describe('MAX_FILES_PER_SESSION', () => {
    it('is exact under concurrent uploads: exactly the limit is stored, the rest get 507 naming it', async () => {
      await start({ MAX_FILES_PER_SESSION: '5' });
      const sessionId = await newSession();
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => upload(sessionId, [{ name: `f${i}.txt`, data: `file ${i}` }])));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(5);
      for (const refused of results.filter((r) => r.status !== 201)) {
        expect(refused.status).toBe(507);
        expect(refused.body).toMatchObject({ type: '/problems/quota-exceeded', limit: 'MAX_FILES_PER_SESSION' });
      }
      expect((await allFiles(sessionId, 100)).names).toHaveLength(5);
      expect((await me()).usage.files).toBe(5);
    });

    it('counts a multi-part upload part by part, all or nothing, and a delete makes room again', async () => {
      await start({ MAX_FILES_PER_SESSION: '3' });
      const sessionId = await newSession();
      await upload(sessionId, [{ name: 'a.txt', data: 'a' }, { name: 'b.txt', data: 'b' }]).expect(201);
      const over = await upload(sessionId, [{ name: 'c.txt', data: 'c' }, { name: 'd.txt', data: 'd' }]);
      expect(over.status).toBe(507);
      expect((await allFiles(sessionId, 100)).names).toEqual(['a.txt', 'b.txt']);
      const [first] = (await request(server).get(`/api/v1/sessions/${sessionId}/files`).set(alice)).body.items;
      await request(server).delete(`/api/v1/sessions/${sessionId}/files/${first.id}`).set(alice).expect(204);
      await upload(sessionId, [{ name: 'c.txt', data: 'c' }, { name: 'd.txt', data: 'd' }]).expect(201);
      expect((await allFiles(sessionId, 100)).names).toEqual(['b.txt', 'c.txt', 'd.txt']);
    });

    it('is per session: another session of the same user has its own room', async () => {
      await start({ MAX_FILES_PER_SESSION: '1' });
      const one = await newSession();
      const two = await newSession();
      await upload(one, [{ name: 'a.txt', data: 'a' }]).expect(201);
      await upload(two, [{ name: 'b.txt', data: 'b' }]).expect(201);
      expect((await upload(one, [{ name: 'c.txt', data: 'c' }])).status).toBe(507);
    });
  });

  describe('file listings', () => {
    it('come a page at a time, oldest first and in request order within an upload, and the pages add up to the whole list', async () => {
      await start({});
      const sessionId = await newSession();
      const expected: string[] = [];
      for (let batch = 0; batch < 5; batch++) {
        const parts = Array.from({ length: 5 }, (_, i) => ({ name: `b${batch}-${4 - i}.txt`, data: `${batch}${i}` }));
        await upload(sessionId, parts).expect(201);
        expected.push(...parts.map((p) => p.name));
      }
      expect(await allFiles(sessionId, 7)).toEqual({ names: expected, pages: 4 });
      expect((await allFiles(sessionId, 1000)).pages).toBe(1);
      const first = await request(server).get(`/api/v1/sessions/${sessionId}/files`).set(alice).expect(200);
      expect(first.body.items).toHaveLength(25);
      expect(first.body.nextCursor).toBeNull();
    });

    it('a page after a file deleted in the meantime goes on after it, skipping nothing', async () => {
      await start({});
      const sessionId = await newSession();
      for (let i = 0; i < 6; i++) await upload(sessionId, [{ name: `f${i}.txt`, data: String(i) }]).expect(201);
      const page = await request(server).get(`/api/v1/sessions/${sessionId}/files?limit=3`).set(alice).expect(200);
      const last = page.body.items[2];
      await request(server).delete(`/api/v1/sessions/${sessionId}/files/${last.id}`).set(alice).expect(204);
      const next = await request(server).get(`/api/v1/sessions/${sessionId}/files`).query({ limit: 3, cursor: page.body.nextCursor }).set(alice).expect(200);
      expect(next.body.items.map((f: { name: string }) => f.name)).toEqual(['f3.txt', 'f4.txt', 'f5.txt']);
    });

    it('refuse a cursor the service did not issue, or issued for another session or user, with the same 400', async () => {
      await start({});
      const sessionId = await newSession();
      const other = await newSession();
      for (let i = 0; i < 3; i++) await upload(sessionId, [{ name: `f${i}.txt`, data: String(i) }]).expect(201);
      const page = await request(server).get(`/api/v1/sessions/${sessionId}/files?limit=1`).set(alice).expect(200);
      const cursor = page.body.nextCursor as string;
      const [body, tag] = cursor.split('.');
      const forgedPosition = Buffer.from(JSON.stringify(['2000-01-01T00:00:00.000Z', page.body.items[0].id])).toString('base64url');
      const bob = bearer(t.token('bob'));
      const attempts = [
        request(server).get(`/api/v1/sessions/${sessionId}/files`).query({ cursor: `${forgedPosition}.${tag}` }).set(alice),
        request(server).get(`/api/v1/sessions/${sessionId}/files`).query({ cursor: `${body}.${'A'.repeat(22)}` }).set(alice),
        request(server).get(`/api/v1/sessions/${other}/files`).query({ cursor }).set(alice),
        request(server).get('/api/v1/sessions').query({ cursor }).set(alice),
        request(server).get(`/api/v1/sessions/${sessionId}/files`).query({ cursor: 'not-a-cursor' }).set(alice),
      ];
      for (const res of await Promise.all(attempts)) {
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ type: '/problems/bad-request', detail: 'The cursor is not one this service issued.' });
      }
      // Bob never learns whether alice's session exists: a 404 like any missing session.
      const asBob = await request(server).get(`/api/v1/sessions/${sessionId}/files`).set(bob);
      expect(asBob.status).toBe(404);
      await request(server).get(`/api/v1/sessions/${sessionId}/files`).query({ cursor }).set(alice).expect(200);
    });

    it('refuse a limit out of range with 400', async () => {
      await start({});
      const sessionId = await newSession();
      for (const limit of ['0', '1001', 'abc']) {
        await request(server).get(`/api/v1/sessions/${sessionId}/files`).query({ limit }).set(alice).expect(400);
      }
    });
  });
});
