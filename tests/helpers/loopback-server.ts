/** A test app on a real loopback port, for tests that need sockets of their own (an upload abandoned mid-body). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { filePart, multipart } from './multipart';
import type { TestApp } from './test-app';

export async function listen(app: TestApp): Promise<http.Server> {
  const s = http.createServer(app.app);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return s;
}

/** Drops every open connection, then waits for the server to close. */
export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * Begins uploading `data` as one file into a session, on a connection of its own, and sends
 * only the first `sent` bytes of the body; the test abandons it with destroy().
 */
export function beginUpload(
  server: http.Server,
  auth: { Authorization: string },
  sessionId: string,
  data: Buffer,
  sent: number,
): http.ClientRequest {
  const { port } = server.address() as AddressInfo;
  const body = multipart([filePart('big.txt', 'text/plain', data)]);
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: `/api/v1/sessions/${sessionId}/files`,
    headers: { ...auth, 'Content-Type': body.contentType, 'Content-Length': body.body.length },
  });
  req.on('error', () => undefined);
  req.write(body.body.subarray(0, sent));
  return req;
}
