/**
 * Several replicas of the built service (real `dist/server.js` processes) behind the real
 * nginx running the deployment's own `deploy/nginx.conf`, for tests that prove N replicas
 * behave as one service:
 *
 * - `frontFromDeployConfig` turns deploy/nginx.conf into the test's front by replacing its one
 *   `server vault:3000;` line with one line per replica and its `listen 80;` with a free
 *   loopback port, and nothing else: if the file stops having either line it throws, and
 *   whatever else the file says is what the test runs;
 * - `send` is an HTTP client that binds each request to a chosen loopback source address
 *   (`from`), so every scenario is its own client address: nginx appends it to
 *   X-Forwarded-For and the replicas (TRUST_PROXY=1) key the per-IP limit on it, so no two
 *   scenarios, and no other test file, share a per-IP counter in Redis;
 * - `RequestLog` reads a replica's request log lines as they arrive, so a test can say which
 *   replica answered a request (nginx's `$request_id` is the service's request id).
 *
 * Never part of the service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { freePort } from './free-port';
import { eventually } from './raw-upload';
import { startServer, type ServerProcess } from './server-process';

export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
export const DEPLOY_NGINX_CONF = path.join(__dirname, '..', '..', 'deploy', 'nginx.conf');

/** Fails (never skips) where nginx is missing: these tests are the proof the deployment's front works. */
export function requireNginx(): void {
  if (!existsSync(NGINX)) {
    throw new Error(`${NGINX} is not installed: the replica tests run the real nginx (apt-get install nginx-light; CI installs it)`);
  }
}

/** A loopback address of its own (127.1-254.x.y, never 127.0.0.1): one client address per scenario. */
export function randomLoopback(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

// ---------------------------------------------------------------------------------------
// HTTP from a chosen source address

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The X-Request-Id of the answer (nginx's `$request_id` behind nginx). */
  requestId: string;
  text(): string;
  json<T = Record<string, unknown>>(): T;
}

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as application/json. */
  json?: unknown;
  body?: Buffer | string;
  /** The loopback source address the connection is bound to. */
  from: string;
  /** A connection of its own, closed after the answer (else one keep-alive pool per source address). */
  fresh?: boolean;
}

const agents = new Map<string, http.Agent>();

function agentFor(from: string): http.Agent {
  let agent = agents.get(from);
  if (!agent) {
    agent = new http.Agent({ keepAlive: true, localAddress: from });
    agents.set(from, agent);
  }
  return agent;
}

/** Closes every pooled connection (afterAll). */
export function closeAgents(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

/** One request; rejects only when no answer came (connection refused or cut), never on a status. */
export function send(url: string, options: SendOptions): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  let body: Buffer | undefined;
  if (options.json !== undefined) {
    body = Buffer.from(JSON.stringify(options.json));
    headers['Content-Type'] = 'application/json';
  } else if (options.body !== undefined) {
    body = Buffer.from(options.body);
  }
  if (body) headers['Content-Length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: options.method ?? 'GET',
      headers,
      ...(options.fresh ? { agent: false, localAddress: options.from } : { agent: agentFor(options.from) }),
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`no answer to ${options.method ?? 'GET'} ${url} within 60 s`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: bytes,
          requestId: String(res.headers['x-request-id'] ?? ''),
          text: () => bytes.toString('utf8'),
          json: <T>() => JSON.parse(bytes.toString('utf8')) as T,
        });
      });
    });
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------
// The replicas' request logs

/** One replica's log lines, parsed once each as they arrive. */
export class RequestLog {
  private parsed = 0;
  readonly lines: Array<Record<string, unknown>> = [];
  readonly byRequestId = new Map<string, Record<string, unknown>>();

  constructor(readonly server: ServerProcess) {}

  refresh(): this {
    const out = this.server.stdout();
    const end = out.lastIndexOf('\n') + 1;
    if (end > this.parsed) {
      for (const text of out.slice(this.parsed, end).split('\n')) {
        if (!text.startsWith('{')) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        this.lines.push(line);
        if (line.category === 'request' && typeof line.requestId === 'string') this.byRequestId.set(line.requestId, line);
      }
      this.parsed = end;
    }
    return this;
  }
}

/**
 * For each request id, the index of the replica whose request log has it (and its line),
 * once every one has been logged (a line is written when the response finishes, so it may
 * reach us just after the answer). Throws naming the ids nobody logged, or logged twice.
 */
export async function whoServed(logs: RequestLog[], requestIds: string[]): Promise<Array<{ replica: number; line: Record<string, unknown> }>> {
  const find = () =>
    requestIds.map((id) => {
      const hits = logs.flatMap((log, replica) => {
        const line = log.refresh().byRequestId.get(id);
        return line ? [{ replica, line }] : [];
      });
      return hits;
    });
  let found = find();
  await eventually(
    async () => {
      found = find();
      return found.every((hits) => hits.length > 0);
    },
    `a request log line for each of ${requestIds.length} request ids`,
  ).catch(() => undefined);
  const missing = requestIds.filter((_, i) => found[i]!.length !== 1);
  if (missing.length > 0) throw new Error(`request ids not logged by exactly one replica: ${missing.slice(0, 5).join(', ')} (${missing.length})`);
  return found.map((hits) => hits[0]!);
}

// ---------------------------------------------------------------------------------------
// nginx from deploy/nginx.conf

/**
 * deploy/nginx.conf with its upstream pointed at `upstreams` and its listener at
 * 127.0.0.1:`port`. Exactly one `server vault:3000;` and one `listen 80;` must be there.
 */
export function frontFromDeployConfig(source: string, upstreams: string[], port: number): string {
  const serverLine = /^([ \t]*)server vault:3000;[ \t]*$/gm;
  const listenLine = /^([ \t]*)listen 80;[ \t]*$/gm;
  const servers = source.match(serverLine) ?? [];
  const listens = source.match(listenLine) ?? [];
  if (servers.length !== 1 || listens.length !== 1) {
    throw new Error(
      `deploy/nginx.conf must have exactly one "server vault:3000;" (its upstream) and one "listen 80;" line; found ${servers.length} and ${listens.length}`,
    );
  }
  return source
    .replace(serverLine, (_line, indent: string) => upstreams.map((u) => `${indent}server ${u};`).join('\n'))
    .replace(listenLine, (_line, indent: string) => `${indent}listen 127.0.0.1:${port};`);
}

export interface NginxFront {
  /** http://127.0.0.1:<port> */
  url: string;
  config: string;
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

/** The real nginx on deploy/nginx.conf in front of `upstreams` (host:port each); resolves once it proxies /healthz. */
export async function startNginxFront(upstreams: string[], dir: string): Promise<NginxFront> {
  requireNginx();
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const site = frontFromDeployConfig(await readFile(DEPLOY_NGINX_CONF, 'utf8'), upstreams, port);
  const conf = path.join(dir, 'nginx.conf');
  const errorLogPath = path.join(dir, 'error.log');
  // One worker: round-robin is then one sequence, so sequential requests cycle over the replicas.
  const config =
    `daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${errorLogPath} warn;\nevents {}\n` +
    `http {\n access_log off;\n client_body_temp_path ${dir}/body;\n proxy_temp_path ${dir}/proxy;\n${site}\n}\n`;
  await writeFile(conf, config);
  const proc: ChildProcess = spawn(NGINX, ['-c', conf, '-p', dir, '-e', errorLogPath], { stdio: 'ignore' });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const errorLog = () => readFile(errorLogPath, 'utf8').catch(() => '(no error log)');
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (!exited) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`nginx on deploy/nginx.conf did not start:\n${await errorLog()}\n--- config ---\n${config}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, config, errorLog, stop };
}

// ---------------------------------------------------------------------------------------
// A replica set

export interface ReplicaSet {
  replicas: ServerProcess[];
  logs: RequestLog[];
  front: NginxFront;
  stop(): Promise<void>;
}

/**
 * Starts `count` replicas at the same time on `env` (each with a DATA_DIR of its own under
 * `dir`: they share nothing on disk), then nginx in front of them. On any failure what was
 * started is stopped before the error is thrown.
 */
export async function startReplicaSet(count: number, env: Record<string, string>, dir: string): Promise<ReplicaSet> {
  const dataDirs = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const dataDir = path.join(dir, `replica-${i}`);
      await mkdir(dataDir, { recursive: true });
      return dataDir;
    }),
  );
  const started = await Promise.allSettled(dataDirs.map((dataDir) => startServer({ ...env, DATA_DIR: dataDir }, 60_000)));
  const replicas = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  if (failed.length > 0) {
    await Promise.allSettled(replicas.map((r) => r.stop()));
    throw new Error(`a replica did not start: ${failed.map((e) => e.message).join('\n')}`);
  }
  let front: NginxFront;
  try {
    front = await startNginxFront(
      replicas.map((r) => new URL(r.url).host),
      path.join(dir, 'nginx'),
    );
  } catch (error) {
    await Promise.allSettled(replicas.map((r) => r.stop()));
    throw error;
  }
  return {
    replicas,
    logs: replicas.map((r) => new RequestLog(r)),
    front,
    stop: async () => {
      await Promise.allSettled([front.stop(), ...replicas.map((r) => r.stop())]);
    },
  };
}
