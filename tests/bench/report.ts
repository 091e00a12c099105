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

export interface Report {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string };
  quick: boolean;
  rows: Row[];
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
      (report.quick ? ' (quick run: smaller fixtures and shorter runs, a smoke check only)' : ''),
    '',
    '| scenario | session-vault | p50 / p99 | errors | baseline | ratio | target | met |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const row of report.rows) {
    const latency = row.p50Ms === undefined ? '' : `${row.p50Ms} / ${row.p99Ms} ms`;
    const baseline = row.baseline ? `${row.baseline.name}: ${figure(row.baseline.value, row.unit)}` : '';
    const percent = (value: number) => (value * 100).toFixed(0);
    const spread = row.ratioSpread ? ` (${percent(row.ratioSpread[0])}-${percent(row.ratioSpread[1])})` : '';
    const ratio = row.ratio === undefined ? '' : `${percent(row.ratio)}%${spread}`;
    const value = figure(row.value, row.unit) + (row.extra ? `; ${row.extra}` : '');
    lines.push(
      `| ${row.scenario} | ${value} | ${latency} | ${row.errors ?? ''} | ${baseline} | ${ratio} | ${row.target} | ${row.met ? 'yes' : '**no**'} |`,
    );
  }
  return lines.join('\n');
}

export async function writeJson(report: Report, file: string): Promise<void> {
  await fs.writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
