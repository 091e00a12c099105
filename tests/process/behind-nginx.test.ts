/**
 * The shipped `config/nginx.conf` in front of the real process (TLS lines removed: the
 * certificate is the operator's): a spoofed X-Forwarded-For does not become the client,
 * nginx's request id reaches the log, uploads stream through, ranges pass, and the
 * readiness probe is not public. Needs Debian's nginx (`.ci/run` installs it).
 *
 * Keep-alive across idle gaps, times scaled down (the service's keep-alive is 1.5 s, nginx's
 * upstream `keepalive_timeout` is rewritten from 60s to 1s): POSTs sent after gaps
 * longer than nginx's timeout and shorter than the service's all succeed. Between nginx and
 * the service runs a link with 150 ms of latency each way, as between two hosts, so nginx
 * learns late that the service closed a connection. The same POSTs through a second nginx
 * that keeps upstream connections longer than the service (the shipped 60s) fail with 502:
 * the rule, not luck, is what keeps them working.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { filePart, multipart } from '../helpers/multipart';
import { TEST_SECRET, makeTempDir } from '../helpers/test-app';
import { describeIf } from '../helpers/prerequisite';
import { logLines, startServer, type ServerProcess } from '../helpers/server-process';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy';

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

/**
 * The shipped config/nginx.conf, TLS lines removed, on a free port in front of `upstream`,
 * with `edit` applied; resolves once nginx answers /healthz.
 */
async function startNginx(dir: string, upstream: string, edit: (site: string) => string = (site) => site): Promise<{ nginx: ChildProcess; base: string }> {
  const port = await freePort();
  const shipped = await readFile(path.join(__dirname, '..', '..', 'config', 'nginx.conf'), 'utf8');
  const site = edit(shipped)
    .replace(/^\s*ssl_certificate.*$/gm, '')
    .replace(/listen 443 ssl http2;.*$/m, `listen 127.0.0.1:${port};`)
    .replace(/server 127\.0\.0\.1:3000;/, `server ${upstream};`)
    .replace(/server \{\s*listen 80;[\s\S]*?\n\}\n?/m, '');
  await mkdir(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\n` +
      `http {\n access_log off;\n client_body_temp_path ${dir}/body;\n proxy_temp_path ${dir}/proxy;\n${site}\n}\n`,
  );
  const nginx = spawn(NGINX, ['-c', conf, '-p', dir], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(await readFile(path.join(dir, 'error.log'), 'utf8').catch(() => 'nginx did not start'));
    await new Promise((r) => setTimeout(r, 50));
  }
  return { nginx, base };
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
    ({ nginx, base } = await startNginx(path.join(dir, 'nginx'), new URL(server.url).host));
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

describeIf(missingNginx, 'keep-alive between nginx and the service across idle gaps', () => {
  const SERVICE_KEEP_ALIVE_MS = 1500;
  const LATENCY_MS = 150;
  let dir: string;
  let server: ServerProcess;
  let link: TcpProxy;
  const nginxes: ChildProcess[] = [];
  const token = jwt.sign({ sub: 'bob' }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 });
  /** How long after a response the service closes an idle connection, measured: Node adds a margin (1 s in Node 20.20) to keepAliveTimeout. */
  let closesAfterMs: number;

  beforeAll(async () => {
    dir = await makeTempDir();
    server = await startServer({
      DATA_DIR: path.join(dir, 'data'),
      JWT_SECRET: TEST_SECRET,
      TRUST_PROXY: '1',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: String(SERVICE_KEEP_ALIVE_MS),
      HTTP_HEADERS_TIMEOUT_MS: String(2 * SERVICE_KEEP_ALIVE_MS),
    });
    const { hostname, port } = new URL(server.url);
    link = await startTcpProxy({ host: hostname, port: Number(port) }, { latencyMs: LATENCY_MS });
    closesAfterMs = await new Promise<number>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.write('GET /healthz HTTP/1.1\r\nHost: vault\r\n\r\n'));
      let answered = 0;
      socket.on('data', () => (answered ||= Date.now()));
      socket.on('end', () => resolve(Date.now() - answered));
      socket.on('error', reject);
    });
  });
  afterAll(async () => {
    for (const nginx of nginxes) nginx.kill('SIGTERM');
    await link?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * For each gap: a POST that succeeds, then another after the gap; the statuses of those.
   * (A failed POST leaves nginx no connection to reuse, so each gap starts from a success.)
   */
  async function postsAfterGaps(base: string, gaps: number[]): Promise<number[]> {
    const post = async () => {
      const res = await fetch(`${base}/api/v1/sessions`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      return res.status;
    };
    const statuses: number[] = [];
    for (const gap of gaps) {
      expect(await post()).toBe(201);
      await new Promise((r) => setTimeout(r, gap));
      statuses.push(await post());
    }
    return statuses;
  }

  /**
   * Gaps after which nginx sends a POST on a connection the service closes before the POST
   * gets there: from a response leaving the service, the service closes `closesAfterMs` later,
   * and nginx sends the next request a latency after the response plus the gap.
   */
  const racingGaps = () => [0.15, 0.35, 0.55, 0.75].map((f) => Math.round(closesAfterMs - 2 * LATENCY_MS * (1 - f)));

  it('the service holds idle connections for its keep-alive timeout', () => {
    expect(closesAfterMs).toBeGreaterThanOrEqual(SERVICE_KEEP_ALIVE_MS - 100);
    // The gaps below are longer than nginx's 1s.
    expect(Math.min(...racingGaps())).toBeGreaterThan(1000);
  });

  it("with nginx's upstream keepalive_timeout below the service's keep-alive, no POST fails after any idle gap", async () => {
    const { nginx, base } = await startNginx(path.join(dir, 'nginx-shipped'), `${link.host}:${link.port}`, (site) => {
      expect(site).toMatch(/^\s*keepalive_timeout 60s;$/m);
      return site.replace(/keepalive_timeout 60s;/, 'keepalive_timeout 1s;');
    });
    nginxes.push(nginx);
    const statuses = await postsAfterGaps(base, [1100, 1300, ...racingGaps()]);
    expect(statuses).toEqual(statuses.map(() => 201));
  }, 60_000);

  it('with nginx keeping upstream connections longer than the service, the same POSTs fail with 502', async () => {
    const { nginx, base } = await startNginx(path.join(dir, 'nginx-longer'), `${link.host}:${link.port}`);
    nginxes.push(nginx);
    const statuses = await postsAfterGaps(base, racingGaps());
    // Each gap is inside the race, so most fail; a loaded machine may shift one out of it.
    expect(statuses.filter((s) => s === 502).length).toBeGreaterThanOrEqual(statuses.length / 2);
    expect(statuses.every((s) => s === 201 || s === 502)).toBe(true);
  }, 60_000);
});
