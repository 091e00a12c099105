/**
 * Graceful shutdown of the real process: on SIGTERM readiness turns 503, the listener closes,
 * a request in flight (an upload) still completes and is stored, then the process exits 0.
 * A stalled request is cut off after SHUTDOWN_TIMEOUT_MS; a second signal exits at once.
 * The storage backend is closed only after the drain (or the cut), never under a request.
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { beginRawUpload, eventually } from '../helpers/raw-upload';
import { processFixture } from '../helpers/process-fixture';
import { logLines, type ServerProcess } from '../helpers/server-process';

const fx = processFixture();
const { auth, token, start, newSession } = fx;
const beginUpload = (server: ServerProcess, sessionId: string, data: Buffer) => beginRawUpload(server, fx.dataDir, token, sessionId, data);

function refusesConnections(server: ServerProcess): Promise<boolean> {
  return fetch(`${server.url}/healthz`).then(
    () => false,
    () => true,
  );
}

describe('SIGTERM', () => {
  it('turns readiness 503, closes the listener, lets an in-flight upload finish and store, then exits 0', async () => {
    const server = await start({ SHUTDOWN_TIMEOUT_MS: '15000' });
    const sessionId = await newSession(server);
    const data = Buffer.alloc(512 * 1024, 'q');
    const upload = await beginUpload(server, sessionId, data);

    server.proc.kill('SIGTERM');
    await eventually(() => refusesConnections(server), 'the listener to close');
    expect(server.proc.exitCode).toBeNull();

    // The rest of the body, and on the same connection a readiness probe behind it.
    upload.socket.write(upload.rest);
    upload.socket.write('GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await upload.closed;
    const statuses = [...upload.received().matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([201, 503]);
    // Draining: the connection is not kept alive for more.
    expect(upload.received()).toMatch(/Connection: close\r\n/i);

    expect(await server.exited).toEqual({ code: 0, signal: null });
    const messages = logLines(server.stdout()).map((l) => String(l.message));
    expect(messages.filter((m) => ['shutting down', 'stopped', 'storage closed'].includes(m))).toEqual(['shutting down', 'stopped', 'storage closed']);

    // What was acknowledged is there after a restart.
    const again = await start();
    const listed = await fetch(`${again.url}/api/v1/sessions/${sessionId}/files`, { headers: auth });
    const { items } = (await listed.json()) as { items: Array<{ name: string; sha256: string }> };
    expect(items).toEqual([expect.objectContaining({ name: 'inflight.txt', sha256: createHash('sha256').update(data).digest('hex') })]);
  });

  it('cuts off a stalled request after SHUTDOWN_TIMEOUT_MS and still exits 0, leaving nothing half-stored', async () => {
    const server = await start({ SHUTDOWN_TIMEOUT_MS: '1000' });
    const sessionId = await newSession(server);
    const upload = await beginUpload(server, sessionId, Buffer.alloc(256 * 1024, 's'));
    const signalled = Date.now();
    server.proc.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    const took = Date.now() - signalled;
    expect(took).toBeGreaterThanOrEqual(900);
    await upload.closed;
    const messages = logLines(server.stdout()).map((l) => l.message);
    expect(messages.indexOf('storage closed')).toBeGreaterThan(messages.indexOf('shutdown timeout, closing remaining connections'));
    expect(messages).toContain('shutdown timeout, closing remaining connections');

    const again = await start();
    const listed = await fetch(`${again.url}/api/v1/sessions/${sessionId}/files`, { headers: auth });
    expect(((await listed.json()) as { items: unknown[] }).items).toEqual([]);
    expect(await readdir(path.join(fx.dataDir, '.staging'))).toEqual([]);
  });

  it('exits at once on a second signal', async () => {
    const server = await start({ SHUTDOWN_TIMEOUT_MS: '60000' });
    const sessionId = await newSession(server);
    await beginUpload(server, sessionId, Buffer.alloc(256 * 1024, 's'));
    server.proc.kill('SIGTERM');
    await eventually(async () => logLines(server.stdout()).some((l) => l.message === 'shutting down'), 'the first signal');
    server.proc.kill('SIGINT');
    const exit = await Promise.race([server.exited, new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(logLines(server.stdout()).map((l) => l.message)).toContain('second signal, exiting now');
  });
});
