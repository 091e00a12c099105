import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../../src/logger';
import { prepareService } from '../../src/startup';
import { configFor, makeTempDir } from '../helpers/test-app';

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
});
