/**
 * What the workload saw: per minute (requests, latencies, error counts) and per operation over
 * the whole run, plus the first few problems of each kind, described, for the final report.
 */

export type Outcome =
  /** The status expected (a 2xx, or the refusal a deliberately bad request must get). */
  | 'ok'
  /** A status other than the one expected, below 500 (a 404 for one's own session, a 429). */
  | 'unexpected'
  /** Any 5xx: fails the run. */
  | 'server'
  /** No answer: refused, reset or timed out. */
  | 'network'
  /** The expected status with the wrong content (bytes, versions, listings): fails the run. */
  | 'wrong'
  /** A 2xx or 3xx where a refusal was expected (another user's data answered): fails the run. */
  | 'breach';

export interface Counts {
  requests: number;
  /** Refusals the workload asked for and got (404 for another user's session, 400s...). */
  refusals: number;
  unexpected: number;
  server: number;
  network: number;
  wrong: number;
  breach: number;
}

export function emptyCounts(): Counts {
  return { requests: 0, refusals: 0, unexpected: 0, server: 0, network: 0, wrong: 0, breach: 0 };
}

export class Bucket {
  readonly counts = emptyCounts();
  readonly latencies: number[] = [];
}

export interface OperationTotals extends Counts {
  latencies: number[];
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const PROBLEM_SAMPLES = 3;

export class Stats {
  /** Requests answered now count in this minute; `rotate` closes it. */
  private current = new Bucket();
  readonly total = emptyCounts();
  readonly byOperation = new Map<string, OperationTotals>();
  /** `label: what happened` -> how often, and up to PROBLEM_SAMPLES distinct details each. */
  readonly problems = new Map<string, { count: number; samples: string[] }>();

  rotate(): Bucket {
    const closed = this.current;
    this.current = new Bucket();
    return closed;
  }

  /** One request that was answered (`ms` set) or not. A refusal that was asked for counts as one. */
  record(label: string, outcome: Outcome, ms: number | undefined, refusal: boolean): void {
    const targets = [this.current.counts, this.total, this.operation(label)];
    for (const counts of targets) {
      counts.requests++;
      if (outcome === 'ok') {
        if (refusal) counts.refusals++;
      } else {
        counts[outcome]++;
      }
    }
    if (ms !== undefined) {
      this.current.latencies.push(ms);
      this.operation(label).latencies.push(ms);
    }
  }

  /** A request already recorded as answered turned out wrong on inspection. */
  wrongContent(label: string): void {
    for (const counts of [this.current.counts, this.total, this.operation(label)]) counts.wrong++;
  }

  problem(key: string, detail: string): void {
    const entry = this.problems.get(key) ?? { count: 0, samples: [] };
    entry.count++;
    if (entry.samples.length < PROBLEM_SAMPLES && !entry.samples.includes(detail)) entry.samples.push(detail);
    this.problems.set(key, entry);
  }

  private operation(label: string): OperationTotals {
    let totals = this.byOperation.get(label);
    if (!totals) {
      totals = { ...emptyCounts(), latencies: [] };
      this.byOperation.set(label, totals);
    }
    return totals;
  }
}

/** Errors worth a column: everything but the refusals asked for. */
export function errorCount(counts: Counts): number {
  return counts.unexpected + counts.server + counts.network + counts.wrong + counts.breach;
}

/** The run fails on a 5xx, a wrong answer or another user's data answered. */
export function failingCount(counts: Counts): number {
  return counts.server + counts.wrong + counts.breach;
}
