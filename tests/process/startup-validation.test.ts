import { writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from '../helpers/test-app';
import { runToExit } from '../helpers/server-process';

let dataDir: string;
beforeEach(async () => {
  dataDir = await makeTempDir();
});
afterEach(() => rm(dataDir, { recursive: true, force: true }));

describe('startup validation (real process)', () => {
  it('exits 1 before listening with one line per bad variable, never printing the secret', async () => {
    const secret = 'hunter2-is-short';
    const result = await runToExit({
      NODE_ENV: 'production',
      DATA_DIR: dataDir,
      PORT: 'eighty',
      JWT_SECRET: secret,
      CORS_ORIGINS: '*',
      LEGACY_CLEANUP: 'sometimes',
    });
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const variable of ['PORT', 'JWT_SECRET', 'CORS_ORIGINS', 'LEGACY_CLEANUP']) {
      expect(lines.some((l) => l.startsWith(`session-vault: ${variable}: `))).toBe(true);
    }
    expect(result.stderr + result.stdout).not.toContain(secret);
    expect(result.stdout).not.toMatch(/listening/);
  });

  it('exits 1 in production without JWT_SECRET or a public key', async () => {
    const result = await runToExit({ NODE_ENV: 'production', DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^session-vault: JWT_SECRET: required in production/m);
  });

  it('exits 1 when DATA_DIR cannot be a writable directory', async () => {
    const file = path.join(dataDir, 'a-file');
    await writeFile(file, 'x');
    const result = await runToExit({ NODE_ENV: 'production', DATA_DIR: path.join(file, 'data'), JWT_SECRET: 'y'.repeat(40) });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^session-vault: DATA_DIR: cannot be created or written \(ENOTDIR\)$/m);
    expect(result.stderr).not.toContain('y'.repeat(40));
  });

  it.each([
    ['/proc/self', 'proc'],
    // Not there yet: /proc/self/data would be made on proc, where mkdir never returns.
    ['/proc/self/data', 'proc'],
    ['/sys/kernel/session-vault', 'sysfs'],
  ])('exits 1 before listening when DATA_DIR (%s) is on a pseudo filesystem, naming it', async (dir, filesystem) => {
    const result = await runToExit({ DATA_DIR: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `session-vault: DATA_DIR: is on the ${filesystem} pseudo filesystem, which cannot hold data; choose a directory on a disk or volume\n`,
    );
    expect(result.stdout).not.toMatch(/listening/);
  });

  it('exits 1 on a public key file that is not a key', async () => {
    const keyFile = path.join(dataDir, 'key.pem');
    await writeFile(keyFile, 'not a key');
    const result = await runToExit({ DATA_DIR: dataDir, JWT_PUBLIC_KEY_FILE: keyFile });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^session-vault: JWT_PUBLIC_KEY_FILE: not a PEM public key$/m);
  });
});
