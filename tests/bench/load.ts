/**
 * Driving an HTTP server with autocannon. Each connection may carry its own request (its own
 * user, its own session), and a scenario runs several times so its figure is a median.
 */
import type { IncomingHttpHeaders } from 'node:http';
import autocannon from 'autocannon';
import { profilerOf } from './profiler';
import { describeRequest, scenarioProgress } from './progress';

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Headers worked out afresh before every send (an If-Match from the last answer's ETag, say). */
  headersBeforeSend?: () => Record<string, string>;
  /** Called with every answer's status and headers, before the connection's next request is built. */
  onResponse?: (status: number, headers: IncomingHttpHeaders) => void;
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
      const { onResponse, headersBeforeSend, ...request } = spec.request(next++ % spec.connections);
      client.setRequests([
        {
          ...request,
          ...(headersBeforeSend ? { setupRequest: (r: autocannon.Request) => ({ ...r, headers: { ...r.headers, ...headersBeforeSend() } }) } : {}),
          ...(onResponse ? { onResponse: (status: number, _body: string, _context: object, headers: IncomingHttpHeaders | undefined) => onResponse(status, headers ?? {}) } : {}),
        },
      ]);
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

export interface Side {
  /**
   * The server, or several replicas of it: the connections are then dealt out evenly over them
   * in turn (what a round-robin proxy does with long-lived connections), and connection `i`
   * sends `request(i)` whichever replica it reaches.
   */
  target: { url: string } | Array<{ url: string }>;
  request: (connection: number) => RequestSpec;
  /** Runs before each of this side's runs, unmeasured (re-reading state the last run changed). */
  prepare?: () => Promise<void>;
}

type MeasureOptions = { runs: number; seconds: number; warmUpSeconds: number; connections: number };

async function runSide(options: MeasureOptions, side: Side, seconds: number): Promise<LoadResult> {
  await side.prepare?.();
  if (!Array.isArray(side.target)) return runLoad({ url: side.target.url, connections: options.connections, seconds, request: side.request });
  const replicas = side.target;
  // Connection i goes to replica i % n, as its own i-th connection there.
  const results = await Promise.all(
    replicas.map((replica, r) =>
      runLoad({
        url: replica.url,
        connections: Math.floor(options.connections / replicas.length) + (r < options.connections % replicas.length ? 1 : 0),
        seconds,
        request: (i) => side.request(i * replicas.length + r),
      }),
    ),
  );
  return {
    requestsPerSecond: results.reduce((sum, r) => sum + r.requestsPerSecond, 0),
    // The slowest replica's latencies: a client behind the proxy may reach any of them.
    p50Ms: Math.max(...results.map((r) => r.p50Ms)),
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
  };
}

/**
 * A subject and its baseline, each warmed up, then measured in alternation: the median of
 * `runs` for each, and the ratio subject/baseline of every turn (a turn runs the two back to
 * back, so a slow minute on a shared machine weighs on both sides of one ratio).
 */
export async function measurePair(
  options: MeasureOptions,
  subject: Side,
  baseline: Side,
): Promise<{ subject: LoadResult; baseline: LoadResult; turnRatios: number[]; profile?: string }> {
  // With `--profile`, the subject service is profiled across the measured turns.
  const profiler = profilerOf(subject.target);
  const [subjectRuns, baselineRuns] = await measureSideRuns(options, [subject, baseline], () => profiler?.start());
  const profile = profiler ? await profiler.stop() : undefined;
  return {
    subject: medianResult(subjectRuns!),
    baseline: medianResult(baselineRuns!),
    turnRatios: subjectRuns!.map((run, i) => run.requestsPerSecond / baselineRuns![i]!.requestsPerSecond),
    ...(profile ? { profile } : {}),
  };
}

/** A subject and its baseline started for one pair of a row measured on fresh pairs, and what stops both. */
export interface StartedPair {
  subject: Side;
  baseline: Side;
  stop(): Promise<void>;
}

/**
 * A subject and its baseline measured as measurePair does, on `pairs` pairs of processes
 * started for it, one pair after the other, each stopped before the next starts. Two
 * processes of one build, started and loaded alike, can differ in CPU per request by several
 * percent for their whole life (the README's Performance section has the A/A runs), which is
 * as much as a narrow target's margin: one pair draws one such difference, several pairs
 * spread it over both sides. The pairs take turns at which side is warmed up first; the
 * ratio is the median of every turn of every pair, and the figures the medians of all runs.
 */
export async function measureFreshPairs(
  options: MeasureOptions,
  pairs: number,
  startPair: () => Promise<StartedPair>,
): Promise<{ subject: LoadResult; baseline: LoadResult; turnRatios: number[]; profile?: string }> {
  const subjectRuns: LoadResult[] = [];
  const baselineRuns: LoadResult[] = [];
  const turnRatios: number[] = [];
  let profile: string | undefined;
  for (let p = 0; p < pairs; p++) {
    const pair = await startPair();
    try {
      // With `--profile`, the first pair's subject is profiled across its measured turns.
      const profiler = p === 0 ? profilerOf(pair.subject.target) : undefined;
      const subjectFirst = p % 2 === 0;
      const runs = await measureSideRuns(options, subjectFirst ? [pair.subject, pair.baseline] : [pair.baseline, pair.subject], () => profiler?.start());
      if (profiler) profile = await profiler.stop();
      const [ofSubject, ofBaseline] = subjectFirst ? runs : [runs[1]!, runs[0]!];
      subjectRuns.push(...ofSubject!);
      baselineRuns.push(...ofBaseline!);
      turnRatios.push(...ofSubject!.map((run, i) => run.requestsPerSecond / ofBaseline![i]!.requestsPerSecond));
    } finally {
      await pair.stop();
    }
  }
  return { subject: medianResult(subjectRuns), baseline: medianResult(baselineRuns), turnRatios, ...(profile ? { profile } : {}) };
}

/**
 * Any number of sides, each warmed up in the order given (unless warmUpSeconds is 0), then run
 * in turn `runs` times, so a slow minute on a shared machine hurts them all rather than one;
 * their medians, in the order given. The order flips every turn (a pair runs baseline then
 * subject, then subject then baseline), so whatever the run before leaves behind (its process
 * still collecting garbage, its sockets closing) weighs on each side alike.
 */
export async function measureSides(options: MeasureOptions, sides: Side[]): Promise<LoadResult[]> {
  return (await measureSideRuns(options, sides)).map(medianResult);
}

/** The order of the sides in turn `turn`: the last side first in even turns, the first side first in odd ones. */
export function turnOrder(sides: number, turn: number): number[] {
  const order = Array.from({ length: sides }, (_, n) => sides - 1 - n);
  return turn % 2 === 0 ? order : order.reverse();
}

/** As measureSides, with every run of every side: `[side][turn]`. */
async function measureSideRuns(options: MeasureOptions, sides: Side[], warmedUp?: () => void): Promise<LoadResult[][]> {
  const progress = scenarioProgress(sides.map((side) => describeRequest(side.request(0))).join(' against '), options.runs);
  if (options.warmUpSeconds > 0) {
    progress(0);
    for (const side of sides) await runSide(options, side, options.warmUpSeconds);
  }
  warmedUp?.();
  const results = sides.map(() => [] as LoadResult[]);
  for (let i = 0; i < options.runs; i++) {
    progress(i + 1);
    for (const n of turnOrder(sides.length, i)) results[n]!.push(await runSide(options, sides[n]!, options.seconds));
  }
  return results;
}
