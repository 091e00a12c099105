/**
 * A small keep-alive HTTP client for the soak workload: at most `sockets` connections to the
 * service (so its fd count is not driven by the client), whole bodies buffered (every body in
 * the workload is small), and every request bounded in time.
 */
import http from 'node:http';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** From the moment a socket carried the request to the end of the answer. */
  ms: number;
}

/** No answer at all: connection refused or reset, or the time limit passed. */
export class NetworkError extends Error {}

export interface Outgoing {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export class Client {
  private readonly agent: http.Agent;

  constructor(
    private readonly url: URL,
    sockets: number,
    private readonly timeoutMs: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'fifo' });
  }

  send(request: Outgoing): Promise<Answer> {
    const headers: Record<string, string> = { ...request.headers };
    if (request.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(request.body));
    return new Promise((resolve, reject) => {
      let started = performance.now();
      const req = http.request({
        host: this.url.hostname,
        port: this.url.port,
        method: request.method,
        path: request.path,
        headers,
        agent: this.agent,
      });
      // Queued behind the socket cap is the client's wait, not the service's latency.
      req.once('socket', () => (started = performance.now()));
      const timer = setTimeout(() => req.destroy(new NetworkError(`timeout after ${this.timeoutMs} ms`)), this.timeoutMs);
      const fail = (error: Error & { code?: string }) => {
        clearTimeout(timer);
        reject(error instanceof NetworkError ? error : new NetworkError(error.code ?? error.message));
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started });
        });
      });
      req.end(request.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
