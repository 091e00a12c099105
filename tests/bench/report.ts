/** The benchmark's result rows, as a markdown table for people and JSON for tools. */
import { promises as fs } from 'node:fs';
import os from 'node:os';

export interface Row {
  scenario: string;
  /** What `value` and `baseline.value` count. */
  unit: 'req/s' | 'MB/s' | 'ms';
  value: number;
  p50Ms?: number;
  p99Ms?: number;
  errors?: number;
  baseline?: { name: string; value: number };
  /** value / baseline.value. */
  ratio?: number;
  /** Any further figure the target speaks of (RSS growth, a checksum verdict). */
  extra?: string;
  target: string;
  met: boolean;
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
    const ratio = row.ratio === undefined ? '' : `${(row.ratio * 100).toFixed(0)}%`;
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
