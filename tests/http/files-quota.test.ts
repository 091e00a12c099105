/**
 * What uploads cost: usage is exact, rises only for accepted files, never ends above the
 * quota however uploads and deletes race, forgets aborted uploads, and survives a restart.
 * That the fs backend leaves nothing staged on disk meanwhile, and rebuilds usage from what
 * it finds there: tests/storage/fs/files-on-disk.test.ts.
 */
import http from 'node:http';
import request from 'supertest';
import { beginUpload, closeServer, listen } from '../helpers/loopback-server';
import { filePart, multipart, SAMPLES } from '../helpers/multipart';
import { FILE_OVERHEAD_BYTES } from '../../src/sessions/ports';
import { bearer, forEachBackend, restartTestApp, startTestApp, type TestApp } from '../helpers/test-app';
import { waitFor } from '../helpers/wait-for';

const QUOTA = 100_000;
let t: TestApp;
let server: http.Server;
let alice: { Authorization: string };

forEachBackend((backend) => {
  beforeEach(async () => {
    t = await startTestApp({ USER_QUOTA_BYTES: String(QUOTA), MAX_UPLOAD_BYTES: String(10 * 1024 * 1024), MAX_CONCURRENT_UPLOADS: '100' }, { backend });
    server = await listen(t);
    alice = bearer(t.token('alice'));
  });
  afterEach(async () => {
    await closeServer(server);
    await t.close();
  });

  async function newSession(): Promise<string> {
    return (await request(server).post('/api/v1/sessions').set(alice).send({}).expect(201)).body.id as string;
  }

  function upload(sessionId: string, name: string, data: Buffer, type = 'text/plain') {
    const body = multipart([filePart(name, type, data)]);
    return request(server).post(`/api/v1/sessions/${sessionId}/files`).set(alice).set('Content-Type', body.contentType).send(body.body);
  }

  async function me() {
    return (await request(server).get('/api/v1/me').set(alice).expect(200)).body.usage as { sessions: number; bytes: number };
  }

  async function files(sessionId: string): Promise<Array<{ id: string; name: string; size: number }>> {
    return (await request(server).get(`/api/v1/sessions/${sessionId}/files`).set(alice).expect(200)).body.items;
  }

  describe('quota', () => {
    it('507 naming USER_QUOTA_BYTES for a file that does not fit, storing nothing', async () => {
      const sessionId = await newSession();
      await upload(sessionId, 'first.txt', Buffer.alloc(60_000, 'a')).expect(201);
      const before = await me();
      const res = await upload(sessionId, 'second.txt', Buffer.alloc(60_000, 'b'));
      expect(res.status).toBe(507);
      expect(res.body).toMatchObject({ status: 507, limit: 'USER_QUOTA_BYTES' });
      expect(await me()).toEqual(before);
      expect((await files(sessionId)).map((f) => f.size)).toEqual([60_000]);
    });

    it('twenty concurrent uploads against a nearly full quota never end above it', async () => {
      const sessionId = await newSession();
      await upload(sessionId, 'filler.txt', Buffer.alloc(80_000, 'f')).expect(201);
      const before = await me();
      const room = QUOTA - before.bytes;
      const size = 3_000;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => upload(sessionId, `race-${i}.txt`, Buffer.alloc(size, String(i % 10)))),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.every((s) => s === 201 || s === 507)).toBe(true);
      const accepted = statuses.filter((s) => s === 201).length;
      // Reservations may refuse an upload that would have fitted after another one failed,
      // never accept one that does not.
      expect(accepted).toBeGreaterThan(0);
      // Each file is charged its bytes plus the overhead of its record.
      expect(accepted).toBeLessThanOrEqual(Math.floor(room / (size + FILE_OVERHEAD_BYTES)));

      const after = await me();
      expect(after.bytes).toBeLessThanOrEqual(QUOTA);
      expect(after.bytes).toBe(before.bytes + accepted * (size + FILE_OVERHEAD_BYTES));
      expect(await files(sessionId)).toHaveLength(1 + accepted);
    });

    it('stays exact while uploads race deletes', async () => {
      const sessionId = await newSession();
      const seeded = (await upload(sessionId, 'seed.txt', Buffer.alloc(50_000, 's')).expect(201)).body.items[0];
      const empty = (await me()).bytes - seeded.size - FILE_OVERHEAD_BYTES;
      const uploads = Array.from({ length: 10 }, (_, i) => upload(sessionId, `u${i}.txt`, Buffer.alloc(8_000, 'u')));
      const removal = request(server).delete(`/api/v1/sessions/${sessionId}/files/${seeded.id}`).set(alice);
      const [removed, ...done] = await Promise.all([removal, ...uploads]);
      expect(removed.status).toBe(204);
      const stored = await files(sessionId);
      expect(stored.find((f) => f.id === seeded.id)).toBeUndefined();
      expect(stored).toHaveLength(done.filter((r) => r.status === 201).length);
      const after = await me();
      expect(after.bytes).toBe(empty + stored.reduce((sum, f) => sum + f.size + FILE_OVERHEAD_BYTES, 0));
      expect(after.bytes).toBeLessThanOrEqual(QUOTA);
    });

    it('gives the bytes back when the session holding them is deleted, even mid-upload', async () => {
      const sessionId = await newSession();
      const pending = upload(sessionId, 'late.txt', Buffer.alloc(40_000, 'l'));
      const deleted = request(server).delete(`/api/v1/sessions/${sessionId}`).set(alice);
      const [up, del] = await Promise.all([pending, deleted]);
      expect(del.status).toBe(204);
      expect([201, 404]).toContain(up.status);
      expect(await me()).toEqual({ sessions: 0, files: 0, bytes: 0 });
      await request(server).get(`/api/v1/sessions/${sessionId}/files`).set(alice).expect(404);
    });
  });

  describe('an upload the client abandons', () => {
    it('leaves no file and no usage behind, and gives its reservation back', async () => {
      const sessionId = await newSession();
      const before = await me();
      const arriving = new Promise<http.IncomingMessage>((resolve) => server.once('request', resolve));
      const req = beginUpload(server, alice, sessionId, Buffer.alloc(QUOTA - before.bytes, 'z'), 40_000);
      // Vanish only once the app is reading the part (its body piped in and drained), so the
      // upload holds a reservation by then; the bytes merely reaching the socket would not say so.
      const incoming = await arriving;
      await waitFor(
        async () => incoming.readableFlowing === true && incoming.readableLength === 0 && incoming.socket.bytesRead >= 40_000,
        (reading) => reading,
        'the app reading the part',
      );
      req.destroy();

      // The service learns of the abort when it learns it: the reservation is given back
      // eventually, and until then a file filling the quota is refused without being stored.
      const room = QUOTA - before.bytes - FILE_OVERHEAD_BYTES;
      await waitFor(() => upload(sessionId, 'fits.txt', Buffer.alloc(room, 'f')).then((r) => r.status), (status) => status === 201, 'a file filling the quota');
      // Nothing of the abandoned upload: only the file that fits, and usage exactly that file.
      expect((await files(sessionId)).map((f) => f.name)).toEqual(['fits.txt']);
      expect((await me()).bytes).toBe(QUOTA);
    });
  });

  describe('after a restart', () => {
    async function restart(): Promise<void> {
      await closeServer(server);
      t = await restartTestApp(t, { USER_QUOTA_BYTES: String(QUOTA), MAX_CONCURRENT_UPLOADS: '100' });
      server = await listen(t);
    }

    it('reports the same usage, files and bytes', async () => {
      const sessionId = await newSession();
      const stored = (await upload(sessionId, 'kept.png', SAMPLES.png, 'image/png').expect(201)).body.items;
      const before = await me();
      await restart();
      expect(await me()).toEqual(before);
      expect(await files(sessionId)).toEqual(stored);
      const got = await request(server).get(`/api/v1/sessions/${sessionId}/files/${stored[0].id}`).set(alice);
      expect(got.status).toBe(200);
      expect(got.headers['etag']).toBe(`"sha256-${stored[0].sha256}"`);
      expect(got.headers['content-length']).toBe(String(SAMPLES.png.length));
    });
  });
});
