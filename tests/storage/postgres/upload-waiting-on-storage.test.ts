/**
 * An upload's idle timeout is the client's silence, not the server's: an upload whose bytes
 * have all been sent, held up longer than UPLOAD_IDLE_TIMEOUT_MS because its user's usage row
 * is locked (another write of the same user, on any replica), still gets its 201, and the
 * file it reports is the one stored. A client that really stops sending is still cut off.
 */
import { once } from 'node:events';
import type { AddressInfo, Server } from 'node:net';
import { Client } from 'pg';
import request from 'supertest';
import { TEST_BACKENDS } from '../../helpers/backends';
import { startTestApp, type TestApp } from '../../helpers/test-app';

const IDLE_MS = 1000;
let t: TestApp;
let server: Server;

beforeEach(async () => {
  t = await startTestApp({ UPLOAD_IDLE_TIMEOUT_MS: String(IDLE_MS) }, { backend: TEST_BACKENDS.find((b) => b.name === 'postgres')! });
  server = t.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
}, 60_000);

afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
  await t.close();
}, 60_000);

/** A superuser on the backend's database, to hold a user's row locked as another write would. */
async function admin(): Promise<Client> {
  const url = new URL(t.storage.env.DATABASE_URL!);
  url.username = process.env.TEST_PGUSER ?? 'postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  return client;
}

async function waitForLockWaiters(client: Client, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { rows } = await client.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    if (Number(rows[0]!.n) >= count) return;
    if (Date.now() > deadline) throw new Error('the upload never waited for the lock');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('an upload waiting on its user’s locked usage row longer than the idle timeout gets its 201, and the file is stored once', async () => {
  const auth = { Authorization: `Bearer ${t.token('alice')}` };
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const session = (await request(base).post('/api/v1/sessions').set(auth).send({ title: 'held' }).expect(201)).body as { id: string };

  const locker = await admin();
  try {
    await locker.query('BEGIN');
    await locker.query("SELECT * FROM usage WHERE user_id = 'alice' FOR UPDATE");
    const upload = request(base)
      .post(`/api/v1/sessions/${session.id}/files`)
      .set(auth)
      .attach('file', Buffer.from('held up by the lock'), { filename: 'held.txt', contentType: 'text/plain' })
      .then((res) => res, (error: unknown) => error);
    await waitForLockWaiters(locker, 1);
    // The event waited for here is the idle timeout itself passing while the upload waits.
    await new Promise((resolve) => setTimeout(resolve, 2 * IDLE_MS));
    await locker.query('COMMIT');
    const answer = await upload;
    expect(answer).toMatchObject({ status: 201 });
    const { items } = (answer as { body: { items: Array<{ id: string; name: string }> } }).body;
    expect(items.map((f) => f.name)).toEqual(['held.txt']);
    const listed = await request(base).get(`/api/v1/sessions/${session.id}/files`).set(auth).expect(200);
    expect((listed.body as { items: Array<{ id: string }> }).items.map((f) => f.id)).toEqual([items[0]!.id]);
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
  }
}, 60_000);

test('a client that stops sending mid-body is still cut off after the idle timeout, and nothing is stored', async () => {
  const auth = { Authorization: `Bearer ${t.token('bob')}` };
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const session = (await request(base).post('/api/v1/sessions').set(auth).send({ title: 'stalled' }).expect(201)).body as { id: string };
  const { connect } = await import('node:net');
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(socket, 'connect');
  const boundary = 'stall-boundary';
  socket.write(
    `POST /api/v1/sessions/${session.id}/files HTTP/1.1\r\nHost: x\r\n${'Authorization'}: ${auth.Authorization}\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000\r\n\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="stalled.txt"\r\nContent-Type: text/plain\r\n\r\npartial`,
  );
  const started = Date.now();
  await once(socket, 'close');
  // Cut off by the idle timeout, not by anything slower.
  expect(Date.now() - started).toBeLessThan(IDLE_MS + 10_000);
  const listed = await request(base).get(`/api/v1/sessions/${session.id}/files`).set(auth).expect(200);
  expect((listed.body as { items: unknown[] }).items).toEqual([]);
}, 60_000);
