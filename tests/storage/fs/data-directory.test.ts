import { mkdir, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import request from 'supertest';
import path from 'node:path';
import { silentLogger } from '../../../src/logger';
import { prepareService } from '../../../src/startup';
import { configFor, makeTempDir, startTestApp } from '../../helpers/test-app';

let dataDir: string;
beforeEach(async () => {
  dataDir = await makeTempDir();
});
afterEach(() => rm(dataDir, { recursive: true, force: true }));

describe('startup on the data directory', () => {
  it('removes leftover temporaries of interrupted writes and deletes', async () => {
    await mkdir(path.join(dataDir, '.staging', 'half-built-session'), { recursive: true });
    await writeFile(path.join(dataDir, '.staging', 'half-built-session', 'session.json'), '{"id":');
    await writeFile(path.join(dataDir, '.staging', '3f1c'), 'partial');
    const prepared = await prepareService(configFor({ DATA_DIR: dataDir }), silentLogger());
    expect(prepared.ok).toBe(true);
    expect(await readdir(path.join(dataDir, '.staging'))).toEqual([]);
  });

  it('refuses to start when sessions/ is a symbolic link', async () => {
    const elsewhere = await makeTempDir('session-vault-outside-');
    try {
      await symlink(elsewhere, path.join(dataDir, 'sessions'));
      const prepared = await prepareService(configFor({ DATA_DIR: dataDir }), silentLogger());
      expect(prepared).toEqual({ ok: false, errors: [expect.stringMatching(/^DATA_DIR: /)] });
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('an owner whose .lock was removed stops being ready (another process could start on the directory)', async () => {
    const t = await startTestApp({}, { dataDir });
    try {
      expect((await request(t.app).get('/readyz')).status).toBe(200);
      await unlink(path.join(dataDir, '.lock'));
      const deadline = Date.now() + 10_000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await request(t.app).get('/readyz')).status;
      }
      expect(status).toBe(503);
    } finally {
      await t.stop();
    }
  });

  it('a .lock that is not a file (a link, a directory) stops startup with a line that says so', async () => {
    await mkdir(path.join(dataDir, '.lock'));
    const prepared = await prepareService(configFor({ DATA_DIR: dataDir }), silentLogger());
    expect(prepared).toEqual({ ok: false, errors: [expect.stringMatching(/^DATA_DIR: \.lock is not a regular file \(EISDIR\)/)] });
  });
});
