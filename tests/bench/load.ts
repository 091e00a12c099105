/**
 * Driving an HTTP server with autocannon. Each connection may carry its own request (its own
 * user, its own session), and a scenario runs several times so its figure is a median.
 */
import autocannon from 'autocannon';

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/** A JSON request (a body, when given, is serialized and typed). */
export function json(method: RequestSpec['method'], path: string, headers: Record<string, string>, body?: unknown): RequestSpec {
  return body === undefined
    ? { method, path, headers }
    : { method, path, headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

export interface LoadSpec {
  url: string;
  connections: number;
  seconds: number;
  /** The request connection `i` sends over and over. */
  request: (connection: number) => RequestSpec;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors, timeouts and any answer that is not the 2xx expected. */
  errors: number;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  let next = 0;
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.seconds,
    setupClient: (client) => {
      const request = spec.request(next++ % spec.connections);
      client.setRequests([{ ...request }]);
    },
  });
  const errors = result.errors + result.timeouts + result.non2xx;
  // A run where requests fail is a broken suite (a wrong token, a missing fixture), not a slow
  // service: it stops the bench rather than reporting a figure for the wrong work.
  if (errors > Math.max(5, result.requests.total * 0.01)) {
    throw new Error(
      `${spec.url}: ${errors} of ${result.requests.total} requests failed (status counts ${JSON.stringify(result.statusCodeStats ?? {})})`,
    );
  }
  return {
    requestsPerSecond: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Medians of every field over the runs. */
export function medianResult(runs: LoadResult[]): LoadResult {
  return {
    requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

/**
 * Runs the subject and its baseline alternately (warm-up first), so a slow minute on a shared
 * machine hurts both rather than one.
 */
export async function compare(
  runs: number,
  subject: () => Promise<LoadResult>,
  baseline: () => Promise<LoadResult>,
  warmUp: () => Promise<unknown>,
): Promise<{ subject: LoadResult; baseline: LoadResult }> {
  await warmUp();
  const subjects: LoadResult[] = [];
  const baselines: LoadResult[] = [];
  for (let i = 0; i < runs; i++) {
    baselines.push(await baseline());
    subjects.push(await subject());
  }
  return { subject: medianResult(subjects), baseline: medianResult(baselines) };
}

export interface Side {
  target: { url: string };
  request: (connection: number) => RequestSpec;
}

/** A subject and its baseline, each warmed up, then measured in alternation (median of `runs`). */
export function measurePair(
  options: { runs: number; seconds: number; warmUpSeconds: number; connections: number },
  subject: Side,
  baseline: Side,
): Promise<{ subject: LoadResult; baseline: LoadResult }> {
  const load = (side: Side, seconds: number) => () =>
    runLoad({ url: side.target.url, connections: options.connections, seconds, request: side.request });
  return compare(options.runs, load(subject, options.seconds), load(baseline, options.seconds), async () => {
    await load(subject, options.warmUpSeconds)();
    await load(baseline, options.warmUpSeconds)();
  });
}
