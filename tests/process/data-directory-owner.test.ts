/**
 * The data directory as operators meet it: one process owns it (a second one is turned away
 * before it touches anything, even with an upload in flight), and entries the service cannot
 * read, such as a volume's root-owned `lost+found`, never stop it from starting.
 */
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beginRawUpload } from '../helpers/raw-upload';
import { processFixture } from '../helpers/process-fixture';
import { TEST_SECRET } from '../helpers/test-app';
import { logLines, runToExit, type Wrapper } from '../helpers/server-process';

const fx = processFixture();
const { auth, token, start, newSession } = fx;

describe('one process per data directory', () => {
  it('a second process on the same directory exits 1 at once, and the first one\'s in-flight upload is stored', async () => {
    const first = await start();
    const sessionId = await newSession(first);
    const data = Buffer.alloc(512 * 1024, 'u');
    const upload = await beginRawUpload(first, fx.dataDir, token, sessionId, data);
    const staged = await readdir(path.join(fx.dataDir, '.staging'));

    const second = await runToExit({ DATA_DIR: fx.dataDir, JWT_SECRET: TEST_SECRET });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(fx.dataDir);
    expect(second.stderr).toMatch(/in use by another session-vault process/);
    expect(second.stdout).not.toMatch(/legacy cleanup|removed interrupted writes|listening/);
    // The staged part is still there: the newcomer touched nothing.
    expect(await readdir(path.join(fx.dataDir, '.staging'))).toEqual(expect.arrayContaining(staged));

    upload.socket.write(upload.rest);
    await new Promise<void>((resolve) => {
      const check = () => (/\r\n\r\n\{/.test(upload.received()) ? resolve() : setTimeout(check, 20));
      check();
    });
    expect(upload.received()).toMatch(/^HTTP\/1\.1 201 /);
    upload.socket.destroy();
    const listed = await fetch(`${first.url}/api/v1/sessions/${sessionId}/files`, { headers: auth });
    const { items } = (await listed.json()) as { items: Array<{ sha256: string }> };
    expect(items).toEqual([expect.objectContaining({ sha256: createHash('sha256').update(data).digest('hex') })]);
  });

  it('the lock dies with its owner: after kill -9 the next process starts at once', async () => {
    const first = await start();
    await first.stop();
    expect(first.proc.signalCode).toBe('SIGKILL');
    const next = await start();
    expect((await fetch(`${next.url}/readyz`)).status).toBe(200);
  });
});

/**
 * Runs the service without the right to read what it does not own. As root that takes
 * dropping the capabilities that bypass permissions (what a non-root container user lacks
 * anyway); as anyone else the permission bits alone do it.
 */
async function unreadableDirectory(dir: string): Promise<Wrapper> {
  await mkdir(dir);
  await writeFile(path.join(dir, 'inode-0042'), 'recovered');
  if (process.getuid?.() === 0) {
    await chown(dir, 4242, 4242);
    await chmod(dir, 0o700);
    return ['setpriv', '--bounding-set=-dac_override,-dac_read_search'];
  }
  await chmod(dir, 0o000);
  return [];
}

describe('entries the service cannot read', () => {
  it('a root-owned 0700 lost+found at the root and under sessions/ are left alone with a warning, and the service starts', async () => {
    await mkdir(path.join(fx.dataDir, 'sessions'));
    const wrapper = await unreadableDirectory(path.join(fx.dataDir, 'lost+found'));
    await unreadableDirectory(path.join(fx.dataDir, 'sessions', 'locked-by-someone-else'));
    try {
      const server = await start({}, wrapper);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      const sessionId = await newSession(server);
      expect((await fetch(`${server.url}/api/v1/sessions/${sessionId}`, { headers: auth })).status).toBe(200);
      const warnings = logLines(server.stdout())
        .filter((l) => l.message === 'legacy cleanup' && l.level === 'warn')
        .map((l) => l.warning);
      expect(warnings).toEqual([expect.stringMatching(/^left sessions\/locked-by-someone-else: cannot read it \(EACCES\)/)]);
    } finally {
      await chmod(path.join(fx.dataDir, 'lost+found'), 0o700);
      await chmod(path.join(fx.dataDir, 'sessions', 'locked-by-someone-else'), 0o700);
    }
  });
});
