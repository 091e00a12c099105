/** The benchmark's result rows, as a markdown table for people and JSON for tools. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { median, type LoadResult } from './load';

export interface Row {
  scenario: string;
  /** What `value` and `baseline.value` count. */
  unit: 'req/s' | 'MB/s' | 'ms';
  value: number;
  p50Ms?: number;
  p99Ms?: number;
  errors?: number;
  baseline?: { name: string; value: number };
  /** value / baseline.value, or the median of the per-turn ratios when the sides ran in turns. */
  ratio?: number;
  /** The lowest and highest per-turn ratio, printed beside the median. */
  ratioSpread?: [number, number];
  /** With `--profile`: the subject's CPU profile over the measured turns. */
  profile?: string;
  /** Any further figure the target speaks of (RSS growth, a checksum verdict). */
  extra?: string;
  /**
   * For a row with no baseline ratio: the figure its target judges, as a fraction of the bound
   * (RSS growth / its limit, RSS after all users / RSS after half). Run-to-run agreement compares
   * this, in points, rather than a throughput that has nothing to be a ratio of.
   */
  judged?: number;
  target: string;
  met: boolean;
}

/** The median of per-turn ratios (each turn ran the subject and its baseline back to back), with their range when there are several. */
export function ratioOfTurns(turns: number[]): { ratio: number; ratioSpread?: [number, number] } {
  if (turns.length < 2) return { ratio: turns[0] ?? Number.NaN };
  return { ratio: median(turns), ratioSpread: [Math.min(...turns), Math.max(...turns)] };
}

/** A row whose target is a throughput ratio to a baseline (and optionally a p50 bound). */
export function ratioRow(
  scenario: string,
  measured: { subject: LoadResult; baseline: LoadResult; turnRatios?: number[]; profile?: string },
  baselineName: string,
  minRatio: number,
  targetText: string,
  extra?: { maxP50Ms: number },
): Row {
  const turns = measured.turnRatios ?? [];
  const ofTurns = turns.length > 1 ? ratioOfTurns(turns) : { ratio: measured.subject.requestsPerSecond / measured.baseline.requestsPerSecond };
  const ratio = ofTurns.ratio;
  const p50Met = extra ? measured.subject.p50Ms <= extra.maxP50Ms : true;
  return {
    scenario,
    unit: 'req/s',
    value: measured.subject.requestsPerSecond,
    p50Ms: measured.subject.p50Ms,
    p99Ms: measured.subject.p99Ms,
    errors: measured.subject.errors + measured.baseline.errors,
    baseline: { name: baselineName, value: measured.baseline.requestsPerSecond },
    ...ofTurns,
    ...(measured.profile ? { profile: measured.profile } : {}),
    target: targetText,
    met: ratio >= minRatio && p50Met && measured.subject.errors === 0,
  };
}

/**
 * How far a row moved between two runs: its ratio in percentage points; for a row without one,
 * the figure its target judges in points; or else its value in percent of the earlier one.
 */
export function runToRunPoints(earlier: Row, later: Row): number {
  if (earlier.ratio !== undefined && later.ratio !== undefined) return Math.abs(later.ratio - earlier.ratio) * 100;
  if (earlier.judged !== undefined && later.judged !== undefined) return Math.abs(later.judged - earlier.judged) * 100;
  return earlier.value === 0 ? Number.POSITIVE_INFINITY : (Math.abs(later.value - earlier.value) / earlier.value) * 100;
}

export interface Agreement {
  agree: boolean;
  /** Each row of the later run with how far it moved since the earlier one (Infinity: not in it). */
  rows: Array<{ scenario: string; points: number }>;
}

/** Whether two runs of the same groups agree within `points` on every row. */
export function runsAgree(earlier: Row[], later: Row[], points: number): Agreement {
  const before = new Map(earlier.map((row) => [row.scenario, row]));
  const rows = later.map((row) => {
    const previous = before.get(row.scenario);
    return { scenario: row.scenario, points: previous ? runToRunPoints(previous, row) : Number.POSITIVE_INFINITY };
  });
  return { agree: rows.length === earlier.length && rows.every((row) => row.points <= points), rows };
}

export interface Report {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  quick: boolean;
  /** Which cores the load generator and the measured processes ran on (cpu-placement.ts). */
  placement?: string;
  rows: Row[];
  /** With `--until-stable`: every run's rows, the last being `rows`, and whether the last two agreed. */
  runs?: Row[][];
  stable?: boolean;
}

export function newReport(quick: boolean): Report {
  return {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
      node: process.version,
    },
    quick,
    rows: [],
  };
}

function figure(value: number, unit: Row['unit']): string {
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

export function markdown(report: Report): string {
  const { machine } = report;
  const lines = [
    `${report.date.slice(0, 10)}, ${machine.cpus} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}` +
      (report.placement === undefined ? '' : `, ${report.placement}`) +
      (report.quick ? ' (quick run: smaller fixtures and shorter runs, a smoke check only)' : ''),
    '',
    '| scenario | session-vault | p50 / p99 | errors | baseline | ratio | target | met |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const previous = report.runs && report.runs.length > 1 ? report.runs[report.runs.length - 2] : undefined;
  const moved = previous ? new Map(runsAgree(previous, report.rows, 0).rows.map((r) => [r.scenario, r.points])) : undefined;
  for (const row of report.rows) {
    const latency = row.p50Ms === undefined ? '' : `${row.p50Ms} / ${row.p99Ms} ms`;
    const baseline = row.baseline ? `${row.baseline.name}: ${figure(row.baseline.value, row.unit)}` : '';
    const percent = (value: number) => (value * 100).toFixed(0);
    const spread = row.ratioSpread ? ` (${percent(row.ratioSpread[0])}-${percent(row.ratioSpread[1])})` : '';
    const ratio = row.ratio === undefined ? '' : `${percent(row.ratio)}%${spread}`;
    const points = moved?.get(row.scenario);
    const runToRun = points === undefined ? '' : `; ${Number.isFinite(points) ? points.toFixed(0) : '-'} points from the run before`;
    const value = figure(row.value, row.unit) + (row.extra ? `; ${row.extra}` : '') + runToRun;
    lines.push(
      `| ${row.scenario} | ${value} | ${latency} | ${row.errors ?? ''} | ${baseline} | ${ratio} | ${row.target} | ${row.met ? 'yes' : '**no**'} |`,
    );
  }
  if (report.runs && report.runs.length > 1) {
    lines.push(
      '',
      `${report.runs.length} runs; the last two ${report.stable ? 'agree' : 'do not agree'} within ${STABLE_POINTS} points on every row (a ratio in points, any other figure in percent).`,
    );
  }
  return lines.join('\n');
}

/** `--until-stable`: how close two consecutive runs must come on every row. */
export const STABLE_POINTS = 10;

export async function writeJson(report: Report, file: string): Promise<void> {
  await fs.writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
