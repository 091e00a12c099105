/**
 * Progress on stderr while the bench runs, so a minute of load is not a minute of silence:
 * one line per run of a measured scenario (which one, run k of n, time taken so far). Only
 * when stderr is a terminal: stdout stays the table, and a log of a CI run stays short.
 */
import type { RequestSpec } from './load';

export interface Progress {
  group: string;
  /** 1 for the group's first measured scenario: tells apart two that send the same requests. */
  ordinal: number;
  /** What is measured, e.g. "GET /api/v1/sessions/:id against GET /". */
  scenario: string;
  /** 0 for the warm-up, then 1..runs. */
  run: number;
  runs: number;
  /** Since this scenario's first warm-up began. */
  scenarioMs: number;
  /** Since the bench began. */
  totalMs: number;
}

/** 75_300 -> "1:15". */
export function clock(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

export function formatProgress(p: Progress): string {
  const step = p.run === 0 ? 'warm-up' : `run ${p.run} of ${p.runs}`;
  return `bench [${clock(p.totalMs)}] ${p.group} #${p.ordinal}: ${p.scenario}: ${step} (${clock(p.scenarioMs)} into this scenario)`;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** A request as a reader names it: method and path, ids as `:id`, numbers (a connection's) as `:n`, no query. */
export function describeRequest(spec: Pick<RequestSpec, 'method' | 'path'>): string {
  return `${spec.method} ${spec.path.split('?')[0]!.replace(UUID, ':id').replace(/\/\d+(?=\/|$)/g, '/:n')}`;
}

const benchStarted = performance.now();
let currentGroup = '';
let measured = 0;

export function startGroup(name: string): void {
  currentGroup = name;
  measured = 0;
}

/** A reporter for one scenario: call it as each run starts. Silent unless stderr is a terminal. */
export function scenarioProgress(scenario: string, runs: number, stream: { isTTY?: boolean; write(line: string): unknown } = process.stderr) {
  const started = performance.now();
  const ordinal = ++measured;
  return (run: number): void => {
    if (!stream.isTTY) return;
    const now = performance.now();
    stream.write(`${formatProgress({ group: currentGroup, ordinal, scenario, run, runs, scenarioMs: now - started, totalMs: now - benchStarted })}\n`);
  };
}
