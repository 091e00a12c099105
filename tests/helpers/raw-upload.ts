/** An upload sent by hand on a raw socket, so a test decides when the rest of the body goes. */
import { readdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { filePart, multipart } from './multipart';
import type { ServerProcess } from './server-process';

/** Resolves once `check` holds; polls an observable condition, with a generous deadline. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Sends the headers and the first half of a one-part upload and waits until the part is
 * being staged in `dataDir`; `rest` is the other half, for the test to write when it wants.
 */
export async function beginRawUpload(server: ServerProcess, dataDir: string, token: string, sessionId: string, data: Buffer) {
  const body = multipart([filePart('inflight.txt', 'text/plain', data)]);
  const { port } = new URL(server.url);
  const socket: Socket = connect(Number(port), '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.write(
    `POST /api/v1/sessions/${sessionId}/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: ${body.contentType}\r\nContent-Length: ${body.body.length}\r\n\r\n`,
  );
  const half = Math.floor(body.body.length / 2);
  socket.write(body.body.subarray(0, half));
  await eventually(async () => (await readdir(path.join(dataDir, '.staging'))).length > 0, 'the part to be staged');
  return { socket, rest: body.body.subarray(half), received: () => received, closed };
}
