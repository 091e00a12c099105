/** The soak's figures: one line per minute, the final tables, the verdict, and the JSON file. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import type { SoakOptions } from './options';
import { errorCount, percentile, type Bucket, type Counts, type OperationTotals, type Stats } from './stats';

const MiB = 1024 * 1024;
/** RSS and fds of the last minute within this much of the first full minute's: "flat". */
export const FLAT_WITHIN = 0.1;

export interface Minute extends Counts {
  minute: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Median of the samples taken every few seconds during the minute. */
  rssBytes: number;
  /** The kernel's peak (VmHWM) over the minute, or the highest sample when it cannot be reset. */
  rssPeakBytes: number;
  /** At the end of the minute; null when the report did not arrive. */
  heapUsedBytes: number | null;
  heapTotalBytes: number | null;
  handles: number | null;
  /** Median and highest of the samples. */
  fds: number;
  fdsMax: number;
  dataBytes: number;
  dataEntries: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : percentile(sorted, 50);
}

export function latencyFigures(bucket: Bucket): { p50Ms: number; p99Ms: number } {
  const sorted = [...bucket.latencies].sort((a, b) => a - b);
  return { p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)) };
}

function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

const mib = (bytes: number | null) => (bytes === null ? 'n/a' : (bytes / MiB).toFixed(1));

export function minuteLine(m: Minute): string {
  const errors = errorCount(m);
  const detail = errors === 0 ? '' : ` (${describeErrors(m)})`;
  return (
    `minute ${String(m.minute).padStart(3)} | ${String(m.requests).padStart(7)} req ${m.requestsPerSecond.toFixed(0).padStart(5)}/s` +
    ` | p50 ${m.p50Ms.toFixed(1)} ms p99 ${m.p99Ms.toFixed(1)} ms | errors ${errors}${detail}, refusals as expected ${m.refusals}` +
    ` | RSS ${mib(m.rssBytes)} MiB (peak ${mib(m.rssPeakBytes)}) | heap ${mib(m.heapUsedBytes)} MiB | fds ${m.fds} (max ${m.fdsMax})` +
    ` | data ${mib(m.dataBytes)} MiB, ${m.dataEntries} entries`
  );
}

export function describeErrors(c: Counts): string {
  const parts: string[] = [];
  if (c.server) parts.push(`5xx ${c.server}`);
  if (c.breach) parts.push(`refusal answered ${c.breach}`);
  if (c.wrong) parts.push(`wrong content ${c.wrong}`);
  if (c.unexpected) parts.push(`other unexpected status ${c.unexpected}`);
  if (c.network) parts.push(`no answer ${c.network}`);
  return parts.join(', ');
}

export function minuteTable(minutes: Minute[]): string {
  const lines = [
    '| minute | requests | req/s | p50 ms | p99 ms | errors | 5xx | RSS MiB | peak RSS MiB | heap MiB | handles | fds (max) | data MiB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const m of minutes) {
    lines.push(
      `| ${m.minute} | ${m.requests} | ${m.requestsPerSecond.toFixed(0)} | ${m.p50Ms} | ${m.p99Ms} | ${errorCount(m)} | ${m.server} | ` +
        `${mib(m.rssBytes)} | ${mib(m.rssPeakBytes)} | ${mib(m.heapUsedBytes)} | ${m.handles ?? 'n/a'} | ${m.fds} (${m.fdsMax}) | ${mib(m.dataBytes)} |`,
    );
  }
  return lines.join('\n');
}

export function operationTable(byOperation: Map<string, OperationTotals>): string {
  const lines = ['| operation | requests | p50 ms | p99 ms | errors |', '|---|---|---|---|---|'];
  const rows = [...byOperation.entries()].sort((a, b) => b[1].requests - a[1].requests);
  for (const [label, totals] of rows) {
    const sorted = [...totals.latencies].sort((a, b) => a - b);
    const errors = errorCount(totals);
    lines.push(
      `| ${label} | ${totals.requests} | ${round(percentile(sorted, 50))} | ${round(percentile(sorted, 99))} | ${errors ? `${errors}: ${describeErrors(totals)}` : 0} |`,
    );
  }
  return lines.join('\n');
}

export interface Flatness {
  /** The first full minute and the last one compared. */
  from: number;
  to: number;
  rss: { first: number; last: number; change: number; met: boolean };
  fds: { first: number; last: number; change: number; met: boolean };
  /** For reading the two above: how the data grew meanwhile (no target). */
  data: { first: number; last: number; change: number };
}

/** The last minute against the first full one; undefined with fewer than two minutes. */
export function flatness(minutes: Minute[]): Flatness | undefined {
  const first = minutes[0];
  const last = minutes.at(-1);
  if (!first || !last || first === last) return undefined;
  const compare = (a: number, b: number) => {
    const change = a === 0 ? 0 : (b - a) / a;
    return { first: a, last: b, change: round(change, 4), met: Math.abs(change) <= FLAT_WITHIN };
  };
  const { met: _met, ...data } = compare(first.dataBytes, last.dataBytes);
  return {
    from: first.minute,
    to: last.minute,
    rss: compare(first.rssBytes, last.rssBytes),
    fds: compare(first.fds, last.fds),
    data,
  };
}

export function flatnessLines(f: Flatness | undefined): string[] {
  if (!f) return ['flat within 10%: n/a (needs at least two minutes)'];
  const pct = (change: number) => `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}%`;
  return [
    `RSS minute ${f.from} -> ${f.to}: ${mib(f.rss.first)} -> ${mib(f.rss.last)} MiB (${pct(f.rss.change)}): flat within 10% ${f.rss.met ? 'met' : 'MISSED'}`,
    `fds minute ${f.from} -> ${f.to}: ${f.fds.first} -> ${f.fds.last} (${pct(f.fds.change)}): flat within 10% ${f.fds.met ? 'met' : 'MISSED'}`,
    `(meanwhile the data directory went ${mib(f.data.first)} -> ${mib(f.data.last)} MiB, ${pct(f.data.change)})`,
  ];
}

export interface SoakResults {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  options: SoakOptions;
  seed: { sessions: number; seconds: number };
  /** The server before the workload started (after seeding). */
  before: { rssBytes: number; fds: number; heapUsedBytes: number | null };
  minutes: Minute[];
  flatness: Flatness | null;
  totals: Counts;
  operations: Array<{ operation: string; requests: number; p50Ms: number; p99Ms: number } & Counts>;
  problems: Array<{ problem: string; count: number; samples: string[] }>;
  server: { died: string | null; stoppedOnSigtermMs: number | null };
  passed: boolean;
}

export function machine(): SoakResults['machine'] {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
  };
}

export function operationsOf(stats: Stats): SoakResults['operations'] {
  return [...stats.byOperation.entries()]
    .sort((a, b) => b[1].requests - a[1].requests)
    .map(([operation, { latencies, ...counts }]) => {
      const sorted = [...latencies].sort((a, b) => a - b);
      return { operation, ...counts, p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)) };
    });
}

export async function writeResults(results: SoakResults, file: string): Promise<void> {
  await fs.writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
}
