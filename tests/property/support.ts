/**
 * What the property tests share: the real app (startTestApp) listening on a loopback port,
 * with the rate limits out of the way (they would turn generated traffic into 429s), and a
 * raw HTTP client that sends the request target and body exactly as generated. supertest
 * goes through WHATWG URL parsing, which would resolve `..` and `%2e` segments before the
 * service ever saw them.
 */
import http from 'node:http';
import fc from 'fast-check';
import type { AddressInfo } from 'node:net';
import type { TestBackend } from '../helpers/backends';
import { bearer, startTestApp, type TestApp } from '../helpers/test-app';

export interface PropertyApp {
  t: TestApp;
  server: http.Server;
  port: number;
  auth(userId: string): { Authorization: string };
  send(request: RawRequest): Promise<RawResponse>;
  close(): Promise<void>;
}

export interface RawRequest {
  method: string;
  /** The request target, sent as is (node only refuses characters outside U+0021-U+00FF). */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON when it is JSON, else undefined. */
  json: unknown;
}

const ANSWER_WITHIN_MS = 3000;

export const NO_RATE_LIMITS = { RATE_LIMIT_MAX: '10000000', RATE_LIMIT_IP_MAX: '10000000' };

/** The app on `backend` (the default backend unless given). */
export async function startPropertyApp(env: Record<string, string> = {}, backend?: TestBackend): Promise<PropertyApp> {
  const t = await startTestApp({ ...NO_RATE_LIMITS, ...env }, { backend });
  const server = http.createServer(t.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const send = (req: RawRequest) => rawRequest(agent, port, req);
  return {
    t,
    server,
    port,
    auth: (userId) => bearer(t.token(userId)),
    send,
    close: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await t.close();
    },
  };
}

function rawRequest(agent: http.Agent, port: number, req: RawRequest): Promise<RawResponse> {
  const body = req.body === undefined ? undefined : Buffer.from(req.body);
  const headers: Record<string, string> = { ...req.headers };
  if (body !== undefined) headers['Content-Length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port, method: req.method, path: req.path, headers, agent });
    outgoing.on('error', reject);
    // A request the service never answers is a failure of its own (a stall), not a test timeout.
    outgoing.setTimeout(ANSWER_WITHIN_MS, () => {
      outgoing.destroy(new Error(`${req.method} ${req.path.slice(0, 200)}: no answer within ${ANSWER_WITHIN_MS} ms`));
    });
    outgoing.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const buffer = Buffer.concat(chunks);
        const text = buffer.toString('utf8');
        let json: unknown;
        if (/json/.test(String(res.headers['content-type']))) {
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buffer, text, json });
      });
    });
    outgoing.end(body);
  });
}

/** A 4xx must be a problem document; anything at or above 500 is a failure of the property. */
export function describeFailure(res: RawResponse, what: string): string {
  return `${what} -> ${res.status} ${res.text.slice(0, 300)}`;
}

export function expectClientOrSuccess(res: RawResponse, what: string): void {
  if (res.status >= 500 || res.status < 200) throw new Error(describeFailure(res, what));
  if (res.status >= 400 && !/^application\/problem\+json/.test(String(res.headers['content-type']))) {
    throw new Error(`${describeFailure(res, what)} (a ${res.status} without a problem document)`);
  }
}

/**
 * Run options shared by the properties: a modest number of runs, and a bound on the whole
 * property (shrinking included) so a stall found by one input is reported with its
 * counterexample instead of ending in a test timeout. A property interrupted without a
 * failure passes with the runs it made.
 */
export function runs(numRuns: number): fc.Parameters<unknown> {
  return { numRuns, plugins: [fc.interruptAfterTimeLimit(20_000)] };
}
