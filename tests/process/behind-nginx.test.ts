/**
 * The shipped `config/nginx.conf` in front of the real process (TLS lines removed: the
 * certificate is the operator's): a spoofed X-Forwarded-For does not become the client,
 * nginx's request id reaches the log, uploads stream through, ranges pass, and the
 * readiness probe is not public. Needs Debian's nginx (`.ci/run` installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { filePart, multipart } from '../helpers/multipart';
import { TEST_SECRET, makeTempDir } from '../helpers/test-app';
import { describeIf } from '../helpers/prerequisite';
import { logLines, startServer, type ServerProcess } from '../helpers/server-process';

// NGINX_PATH points elsewhere (e.g. /nonexistent) to see the suite skipped as on a machine without it.
const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
const missingNginx = existsSync(NGINX) ? undefined : `${NGINX} is not installed (apt-get install nginx-light)`;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describeIf(missingNginx, 'behind the example nginx configuration', () => {
  let dir: string;
  let server: ServerProcess;
  let nginx: ChildProcess;
  let base: string;
  const token = jwt.sign({ sub: 'alice' }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 });
  const auth = { Authorization: `Bearer ${token}` };

  beforeAll(async () => {
    dir = await makeTempDir();
    server = await startServer({ DATA_DIR: path.join(dir, 'data'), JWT_SECRET: TEST_SECRET, TRUST_PROXY: '1', MAX_UPLOAD_BYTES: String(64 * 1024 * 1024) });
    const port = await freePort();
    const site = (await readFile(path.join(__dirname, '..', '..', 'config', 'nginx.conf'), 'utf8'))
      .replace(/^\s*ssl_certificate.*$/gm, '')
      .replace(/listen 443 ssl http2;.*$/m, `listen 127.0.0.1:${port};`)
      .replace(/server 127\.0\.0\.1:3000;/, `server ${new URL(server.url).host};`)
      .replace(/server \{\s*listen 80;[\s\S]*?\n\}\n?/m, '');
    await mkdir(path.join(dir, 'nginx'), { recursive: true });
    const conf = path.join(dir, 'nginx', 'nginx.conf');
    await writeFile(
      conf,
      `daemon off;\nworker_processes 1;\npid ${dir}/nginx/nginx.pid;\nerror_log ${dir}/nginx/error.log;\nevents {}\n` +
        `http {\n access_log off;\n client_body_temp_path ${dir}/nginx/body;\n proxy_temp_path ${dir}/nginx/proxy;\n${site}\n}\n`,
    );
    nginx = spawn(NGINX, ['-c', conf, '-p', path.join(dir, 'nginx')], { stdio: 'ignore' });
    base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
      if (up) break;
      if (Date.now() > deadline) throw new Error(await readFile(path.join(dir, 'nginx', 'error.log'), 'utf8').catch(() => 'nginx did not start'));
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    nginx?.kill('SIGTERM');
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("logs the address nginx saw, not a spoofed one, under nginx's request id", async () => {
    const res = await fetch(`${base}/api/v1/me`, { headers: { ...auth, 'X-Forwarded-For': '6.6.6.6', 'X-Request-Id': 'client-chosen-id' } });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toMatch(/^[0-9a-f]{32}$/);
    await new Promise((r) => setTimeout(r, 50));
    const line = logLines(server.stdout()).find((l) => l.requestId === requestId);
    expect(line).toMatchObject({ route: '/api/v1/me', ip: '127.0.0.1', userId: 'alice' });
  });

  it('streams a 32 MB upload through and serves a range back', async () => {
    const created = await fetch(`${base}/api/v1/sessions`, { method: 'POST', headers: auth });
    const { id } = (await created.json()) as { id: string };
    const data = Buffer.alloc(32 * 1024 * 1024, 'n');
    const body = multipart([filePart('big.txt', 'text/plain', data)]);
    const up = await fetch(`${base}/api/v1/sessions/${id}/files`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': body.contentType },
      body: body.body,
    });
    expect(up.status).toBe(201);
    const [file] = ((await up.json()) as { items: Array<{ id: string; sha256: string }> }).items;
    expect(file!.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    const part = await fetch(`${base}/api/v1/sessions/${id}/files/${file!.id}`, { headers: { ...auth, Range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-19/${data.length}`);
    expect(await part.text()).toBe('nnnnnnnnnn');
  });

  it('keeps the readiness probe off the public side', async () => {
    expect((await fetch(`${base}/readyz`)).status).toBe(403);
  });
});
