/**
 * Files through the running process: the browser's own FormData/fetch flow, and a 200 MB
 * file uploaded as one multipart part and downloaded back byte-identical while the process's
 * resident memory stays flat (no part is buffered).
 */
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import jwt from 'jsonwebtoken';
import { streamFilePart } from '../helpers/multipart';
import { memoryOf } from '../helpers/process-memory';
import { TEST_SECRET, makeTempDir } from '../helpers/test-app';
import { startServer, type ServerProcess } from '../helpers/server-process';

const MiB = 1024 * 1024;
const FILE_BYTES = 200 * MiB;
/**
 * Every byte in or out passes through a buffer of its own (Node copies each body chunk off the
 * socket, and each disk read is a fresh buffer), and V8 frees dead buffers only once about
 * 64 MiB of them have piled up (its soft limit on external memory), so growth up to that is
 * V8's and not a sign of buffering: Node 24 reaches 72-83 MB here, Node 20 42-46 MB. A part
 * held in memory, or a queue of half of it, still fails the bound.
 */
const RSS_GROWTH_LIMIT = FILE_BYTES / 2;

let dataDir: string;
let server: ServerProcess;

beforeAll(async () => {
  dataDir = await makeTempDir();
  server = await startServer({
    DATA_DIR: dataDir,
    JWT_SECRET: TEST_SECRET,
    MAX_UPLOAD_BYTES: String(FILE_BYTES),
    USER_QUOTA_BYTES: String(2 * FILE_BYTES),
  });
});
afterAll(async () => {
  await server?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** `bytes` of a repeated random block, produced as it is sent. */
function repeated(block: Buffer, bytes: number): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < bytes; sent += block.length) yield block;
    })(),
  );
}

const tokenFor = (userId: string) => jwt.sign({ sub: userId }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 });

it('upload with FormData, list, download, delete: the flow a browser runs', async () => {
  const auth = { Authorization: `Bearer ${tokenFor('browser-user')}` };
  const api = `${server.url}/api/v1/sessions`;
  const { id } = (await (await fetch(api, { method: 'POST', headers: auth })).json()) as { id: string };
  const csv = new Blob(['city,days\nLisbon,4\n'], { type: 'text/csv' });
  const png = new Blob([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex')], { type: 'image/png' });
  const form = new FormData();
  form.append('file', csv, 'plan résumé.csv');
  form.append('file', png, 'map.png');

  const posted = await fetch(`${api}/${id}/files`, { method: 'POST', headers: auth, body: form });
  expect(posted.status).toBe(201);
  const { items } = (await posted.json()) as { items: Array<{ id: string; name: string; size: number }> };
  expect(items.map((f) => [f.name, f.size])).toEqual([['plan résumé.csv', csv.size], ['map.png', png.size]]);

  const listed = (await (await fetch(`${api}/${id}/files`, { headers: auth })).json()) as { items: unknown[] };
  expect(listed.items).toEqual(items);

  const got = await fetch(`${api}/${id}/files/${items[0]!.id}`, { headers: auth });
  expect(got.headers.get('content-disposition')).toBe(`attachment; filename="plan r_sum_.csv"; filename*=UTF-8''plan%20r%C3%A9sum%C3%A9.csv`);
  expect(Buffer.from(await got.arrayBuffer()).equals(Buffer.from(await csv.arrayBuffer()))).toBe(true);

  expect((await fetch(`${api}/${id}/files/${items[0]!.id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
  const after = (await (await fetch(`${api}/${id}/files`, { headers: auth })).json()) as { items: Array<{ id: string }> };
  expect(after.items.map((f) => f.id)).toEqual([items[1]!.id]);
});

it('uploads and downloads 200 MB with RSS growth under half of it', async () => {
  const token = tokenFor('alice');
  const auth = { Authorization: `Bearer ${token}` };
  const created = await fetch(`${server.url}/api/v1/sessions`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{}' });
  const { id: sessionId } = (await created.json()) as { id: string };

  // Printable bytes, so the part passes as text/plain; random, so nothing compresses it away.
  const block = Buffer.from(randomBytes(MiB / 2).toString('hex'));
  const expected = createHash('sha256');
  for (let i = 0; i < FILE_BYTES / block.length; i++) expected.update(block);
  const expectedSha = expected.digest('hex');

  const pid = server.proc.pid!;
  const before = await memoryOf(pid);
  let sampledPeak = before.rss;
  const sampler = setInterval(() => {
    void memoryOf(pid).then((m) => (sampledPeak = Math.max(sampledPeak, m.rss)), () => undefined);
  }, 25);

  const uploadStart = process.hrtime.bigint();
  const uploaded = await streamFilePart(
    `${server.url}/api/v1/sessions/${sessionId}/files`,
    auth,
    { filename: 'big.bin', contentType: 'text/plain' },
    repeated(block, FILE_BYTES),
    FILE_BYTES,
  );
  const uploadSeconds = Number(process.hrtime.bigint() - uploadStart) / 1e9;
  expect(uploaded.status).toBe(201);
  const [file] = (JSON.parse(uploaded.body) as { items: Array<{ id: string; size: number; sha256: string }> }).items;
  expect(file).toMatchObject({ size: FILE_BYTES, sha256: expectedSha });

  const downloadStart = process.hrtime.bigint();
  const res = await fetch(`${server.url}/api/v1/sessions/${sessionId}/files/${file!.id}`, { headers: auth });
  expect(res.status).toBe(200);
  const got = createHash('sha256');
  let received = 0;
  for await (const chunk of res.body!) {
    got.update(chunk);
    received += chunk.length;
  }
  const downloadSeconds = Number(process.hrtime.bigint() - downloadStart) / 1e9;
  clearInterval(sampler);
  expect(received).toBe(FILE_BYTES);
  expect(got.digest('hex')).toBe(expectedSha);

  const after = await memoryOf(pid);
  const growth = Math.max(after.peak, sampledPeak) - before.rss;
  const mb = (n: number) => (n / MiB).toFixed(1);
  console.log(
    `200 MB: upload ${mb(FILE_BYTES / uploadSeconds)} MB/s, download ${mb(FILE_BYTES / downloadSeconds)} MB/s, ` +
      `RSS ${mb(before.rss)} MB before, peak ${mb(Math.max(after.peak, sampledPeak))} MB, growth ${mb(growth)} MB`,
  );
  expect(growth).toBeLessThan(RSS_GROWTH_LIMIT);
}, 120_000);
