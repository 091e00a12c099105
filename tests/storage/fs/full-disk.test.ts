/**
 * A full disk, for real: the data directory on a small tmpfs filled to the last page. Deleting
 * must still work there (it is how a user frees space), and readiness probes must not leave a
 * file behind per call. Mounting takes root, which CI has; elsewhere the suite says why it is
 * skipped.
 */
import { execFile } from 'node:child_process';
import { closeSync, openSync, promises as fsp, writeSync } from 'node:fs';
import { readdir, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { filePart, multipart } from '../../helpers/multipart';
import { describeIf, missingRoot } from '../../helpers/prerequisite';
import { bearer, makeTempDir, restartTestApp, startTestApp, type TestApp } from '../../helpers/test-app';

const run = promisify(execFile);

let mountPoint: string;
let t: TestApp;
let alice: { Authorization: string };

/** Fills the filesystem under `dir` until not one more byte fits; returns the filler's path. */
function fill(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  }
  try {
    for (;;) writeSync(fd, block, 0, 1);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  }
  closeSync(fd);
  return filler;
}

async function upload(sessionId: string, name: string, data: Buffer): Promise<string> {
  const body = multipart([filePart(name, 'text/plain', data)]);
  const res = await request(t.app).post(`/api/v1/sessions/${sessionId}/files`).set(alice).set('Content-Type', body.contentType).send(body.body);
  expect(res.status).toBe(201);
  return res.body.items[0].id as string;
}

describeIf(missingRoot, 'on a full disk', () => {
  beforeEach(async () => {
    mountPoint = await makeTempDir('session-vault-full-');
    await run('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', mountPoint]);
    t = await startTestApp({ RATE_LIMIT_MAX: '100000', RATE_LIMIT_IP_MAX: '100000' }, { dataDir: path.join(mountPoint, 'data') });
    alice = bearer(t.token('alice'));
  });
  afterEach(async () => {
    await t.stop();
    await run('umount', [mountPoint]);
    await rm(mountPoint, { recursive: true, force: true });
  });

  it('deleting files works and frees space, the empty file included, and stays deleted after a restart', async () => {
    const sessionId = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'full' })).body.id as string;
    const big = await upload(sessionId, 'big.txt', Buffer.alloc(200 * 1024, 'b'));
    const empty = await upload(sessionId, 'empty.txt', Buffer.alloc(0));
    const kept = await upload(sessionId, 'kept.txt', Buffer.from('keep me'));
    fill(mountPoint);
    // The disk is really full: a change that needs room is refused.
    const patch = await request(t.app).patch(`/api/v1/sessions/${sessionId}`).set(alice).send({ state: { grow: 'x'.repeat(8000) } });
    expect(patch.status).toBe(507);

    await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${empty}`).set(alice).expect(204);
    await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${big}`).set(alice).expect(204);
    const listed = await request(t.app).get(`/api/v1/sessions/${sessionId}/files`).set(alice).expect(200);
    expect(listed.body.items.map((f: { id: string }) => f.id)).toEqual([kept]);
    await request(t.app).get(`/api/v1/sessions/${sessionId}/files/${big}`).set(alice).expect(404);
    // The space is back: the change that was refused now fits.
    await request(t.app).patch(`/api/v1/sessions/${sessionId}`).set(alice).send({ state: { grow: 'x'.repeat(8000) } }).expect(200);

    t = await restartTestApp(t, { RATE_LIMIT_MAX: '100000' });
    alice = bearer(t.token('alice'));
    const again = await request(t.app).get(`/api/v1/sessions/${sessionId}/files`).set(alice).expect(200);
    expect(again.body.items.map((f: { id: string }) => f.id)).toEqual([kept]);
    const bytes = await request(t.app).get(`/api/v1/sessions/${sessionId}/files/${kept}`).set(alice).expect(200);
    expect(bytes.text).toBe('keep me');
  });

  it('deleting a session works too', async () => {
    const sessionId = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'full' })).body.id as string;
    await upload(sessionId, 'big.txt', Buffer.alloc(100 * 1024, 'b'));
    fill(mountPoint);
    await request(t.app).delete(`/api/v1/sessions/${sessionId}`).set(alice).expect(204);
    await request(t.app).get(`/api/v1/sessions/${sessionId}`).set(alice).expect(404);
  });

  it('/readyz answers 503 and leaves nothing behind, probing at most about once a second however often it is called', async () => {
    const filler = fill(mountPoint);
    const writes = jest.spyOn(fsp, 'writeFile');
    const started = Date.now();
    try {
      for (let round = 0; round < 30; round++) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => request(t.app).get('/readyz')));
        expect(answers.map((a) => a.status)).toEqual(Array(10).fill(503));
      }
      const seconds = (Date.now() - started) / 1000;
      expect(writes.mock.calls.length).toBeGreaterThanOrEqual(1);
      expect(writes.mock.calls.length).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    } finally {
      writes.mockRestore();
    }
    expect(await readdir(path.join(t.dataDir, '.staging'))).toEqual([]);
    await unlink(filler);
    const deadline = Date.now() + 10_000;
    let status = 503;
    while (status !== 200 && Date.now() < deadline) {
      status = (await request(t.app).get('/readyz')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  });

  it('the service restarts on a full disk: not ready until there is room, and deleting works', async () => {
    const sessionId = (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'full' })).body.id as string;
    const big = await upload(sessionId, 'big.txt', Buffer.alloc(200 * 1024, 'b'));
    fill(mountPoint);
    t = await restartTestApp(t, { RATE_LIMIT_MAX: '100000' });
    alice = bearer(t.token('alice'));
    expect((await request(t.app).get('/readyz')).status).toBe(503);
    await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${big}`).set(alice).expect(204);
    const deadline = Date.now() + 10_000;
    let status = 503;
    while (status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await request(t.app).get('/readyz')).status;
    }
    expect(status).toBe(200);
  });
});
