/**
 * Nothing a client holds open stays held for ever, on the real process: a download nobody
 * reads is ended after DOWNLOAD_IDLE_TIMEOUT_MS and its descriptor released; an upload
 * nobody sends is aborted after UPLOAD_IDLE_TIMEOUT_MS and its reservation released; a
 * connection that never sends a byte is closed after HTTP_IDLE_TIMEOUT_MS; and one user
 * gets at most MAX_CONCURRENT_DOWNLOADS transfers at once.
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { streamFilePart } from '../helpers/multipart';
import { processFixture } from '../helpers/process-fixture';
import { openDescriptors } from '../helpers/process-memory';
import { beginRawUpload, eventually } from '../helpers/raw-upload';
import type { ServerProcess } from '../helpers/server-process';

const fx = processFixture();
const MiB = 1024 * 1024;
/** Larger than what loopback socket buffers take in, so a reader that stops leaves it in flight. */
const FILE_BYTES = 48 * MiB;

async function storeFile(server: ServerProcess, sessionId: string): Promise<string> {
  const block = Buffer.from(randomBytes(MiB / 2).toString('hex'));
  const source = Readable.from((function* () {
    for (let sent = 0; sent < FILE_BYTES; sent += MiB) yield block;
  })());
  const res = await streamFilePart(`${server.url}/api/v1/sessions/${sessionId}/files`, fx.auth, { filename: 'big.bin', contentType: 'text/plain' }, source, FILE_BYTES);
  expect(res.status).toBe(201);
  return (JSON.parse(res.body) as { items: Array<{ id: string }> }).items[0]!.id;
}

/** A download request whose client then reads nothing at all. */
function stalledDownload(server: ServerProcess, sessionId: string, fileId: string): Promise<{ socket: Socket; head: () => string }> {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  let head = '';
  socket.on('error', () => undefined);
  return new Promise((resolve) => {
    socket.once('connect', () => {
      socket.write(`GET /api/v1/sessions/${sessionId}/files/${fileId} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${fx.auth.Authorization}\r\n\r\n`);
      // Read the first chunk (the status line), then stop reading for good.
      socket.once('data', (chunk: Buffer) => {
        head = chunk.subarray(0, 200).toString('latin1');
        socket.pause();
        resolve({ socket, head: () => head });
      });
    });
  });
}

const env = { MAX_UPLOAD_BYTES: String(FILE_BYTES), USER_QUOTA_BYTES: String(4 * FILE_BYTES) };

it('a download whose client reads nothing is ended after DOWNLOAD_IDLE_TIMEOUT_MS, and its descriptor released', async () => {
  // Long enough that all three are still held when they are counted, even on a busy machine.
  const server = await fx.start({ ...env, DOWNLOAD_IDLE_TIMEOUT_MS: '3000' });
  const sessionId = await fx.newSession(server);
  const fileId = await storeFile(server, sessionId);
  const idle = await openDescriptors(server.proc.pid!);
  const stalled = await Promise.all([1, 2, 3].map(() => stalledDownload(server, sessionId, fileId)));
  for (const s of stalled) expect(s.head()).toMatch(/^HTTP\/1\.1 200 /);
  // Each holds its socket and the open file while it waits.
  expect(await openDescriptors(server.proc.pid!)).toBeGreaterThanOrEqual(idle + 6);
  await eventually(async () => (await openDescriptors(server.proc.pid!)) <= idle, 'the stalled downloads to be released', 20_000);
  // The service still answers.
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  for (const s of stalled) s.socket.destroy();
});

it('one user gets at most MAX_CONCURRENT_DOWNLOADS at once: the next is a 429 naming the limit, and a finished one frees its slot', async () => {
  const server = await fx.start({ ...env, MAX_CONCURRENT_DOWNLOADS: '2', DOWNLOAD_IDLE_TIMEOUT_MS: '60000' });
  const sessionId = await fx.newSession(server);
  const fileId = await storeFile(server, sessionId);
  const stalled = await Promise.all([1, 2].map(() => stalledDownload(server, sessionId, fileId)));
  const third = await fetch(`${server.url}/api/v1/sessions/${sessionId}/files/${fileId}`, { headers: fx.auth });
  expect(third.status).toBe(429);
  expect(third.headers.get('retry-after')).toBe('1');
  expect(await third.json()).toMatchObject({ type: '/problems/too-many-requests', limit: 'MAX_CONCURRENT_DOWNLOADS' });
  // Another user is not affected.
  stalled[0]!.socket.destroy();
  await eventually(async () => (await fetch(`${server.url}/api/v1/sessions/${sessionId}/files/${fileId}`, { method: 'HEAD', headers: fx.auth })).status === 200, 'a slot to free up');
  stalled[1]!.socket.destroy();
});

it('an upload whose client stops sending is aborted after UPLOAD_IDLE_TIMEOUT_MS: nothing staged, nothing reserved', async () => {
  const server = await fx.start({ ...env, USER_QUOTA_BYTES: String(2 * MiB), UPLOAD_IDLE_TIMEOUT_MS: '1000' });
  const sessionId = await fx.newSession(server);
  const me = async () => ((await (await fetch(`${server.url}/api/v1/me`, { headers: fx.auth })).json()) as { usage: { bytes: number } }).usage;
  const before = await me();
  const upload = await beginRawUpload(server, fx.dataDir, fx.token, sessionId, Buffer.alloc(MiB, 'u'));
  await upload.closed;
  await eventually(async () => (await readdir(path.join(fx.dataDir, '.staging'))).length === 0, 'the staged part to be removed');
  expect(await me()).toEqual(before);
  // The reservation is gone: a file as large as the stalled one still fits.
  const again = await streamFilePart(`${server.url}/api/v1/sessions/${sessionId}/files`, fx.auth, { filename: 'a.txt', contentType: 'text/plain' }, Readable.from([Buffer.alloc(MiB, 'a')]), MiB);
  expect(again.status).toBe(201);
});

it('a connection that never sends a byte is closed after HTTP_IDLE_TIMEOUT_MS', async () => {
  const server = await fx.start({ HTTP_IDLE_TIMEOUT_MS: '1000' });
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  socket.resume();
  const started = Date.now();
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // Closed by the server, well before the test's own timeout: the idle timeout, not luck.
  expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  expect(Date.now() - started).toBeLessThan(15_000);
});
