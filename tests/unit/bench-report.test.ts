/**
 * The bench's own arithmetic: a row's ratio is the median of its turns' ratios with the lowest
 * and highest printed beside it, and a CPU profile's self time is summed by where the code lives.
 */
import { turnOrder } from '../bench/load';
import { markdown, newReport, ratioRow, runsAgree, type Row } from '../bench/report';
import { moduleOf, summarize } from '../bench/profile-summary';

const run = (requestsPerSecond: number) => ({ requestsPerSecond, p50Ms: 1, p99Ms: 2, errors: 0 });

it('takes the median of the per-turn ratios and prints their range', () => {
  const row = ratioRow('GET', { subject: run(900), baseline: run(1000), turnRatios: [0.7, 0.96, 1.1] }, 'bare', 0.95, '>= 95%');
  expect(row.ratio).toBe(0.96);
  expect(row.ratioSpread).toEqual([0.7, 1.1]);
  expect(row.met).toBe(true);
  const report = newReport(false);
  report.rows.push(row);
  expect(markdown(report)).toContain('| 96% (70-110) |');
});

it('without turns, divides the medians and prints no range', () => {
  const row = ratioRow('GET', { subject: run(900), baseline: run(1000) }, 'bare', 0.95, '>= 95%');
  expect(row.ratio).toBeCloseTo(0.9);
  expect(row.ratioSpread).toBeUndefined();
  expect(row.met).toBe(false);
});

it('names where code lives: a package, a file of the service, Node, or V8', () => {
  expect(moduleOf('file:///work/main/node_modules/express-rate-limit/dist/index.cjs', 'x')).toBe('express-rate-limit');
  expect(moduleOf('file:///work/main/node_modules/@redis/client/dist/x.js', 'x')).toBe('@redis/client');
  expect(moduleOf('file:///work/main/dist/http/request-log.js', 'x')).toBe('http/request-log');
  expect(moduleOf('node:_http_server', 'x')).toBe('node:_http_server');
  expect(moduleOf('', '(garbage collector)')).toBe('(garbage collector)');
});

it('sums self time per module and leaves idle out of the shares', () => {
  const frame = (id: number, url: string, functionName = 'f') => ({ id, callFrame: { url, functionName } });
  const summary = summarize({
    nodes: [frame(1, '', '(idle)'), frame(2, 'file:///x/node_modules/router/index.js'), frame(3, 'file:///x/dist/logger.js')],
    // Sample i lasts timeDeltas[i + 1] microseconds.
    samples: [1, 2, 2, 3, 1],
    timeDeltas: [0, 5000, 1000, 3000, 1000],
  });
  expect(summary.busyMs).toBe(5);
  expect(summary.modules).toEqual([
    { module: 'router', selfMs: 4, share: 0.8 },
    { module: 'logger', selfMs: 1, share: 0.2 },
  ]);
});

describe('run-to-run agreement', () => {
  const ratioRowOf = (scenario: string, ratio: number): Row => ({ scenario, unit: 'req/s', value: 1000 * ratio, ratio, target: '', met: true });
  const msRow = (scenario: string, value: number): Row => ({ scenario, unit: 'ms', value, target: '', met: true });

  it('holds when every ratio moved at most the points given and every other figure at most that percent', () => {
    const earlier = [ratioRowOf('GET', 0.6), ratioRowOf('PATCH', 0.9), msRow('restart', 1000)];
    const later = [ratioRowOf('GET', 0.69), ratioRowOf('PATCH', 0.85), msRow('restart', 1090)];
    const agreement = runsAgree(earlier, later, 10);
    expect(agreement.agree).toBe(true);
    expect(agreement.rows.map((r) => Math.round(r.points))).toEqual([9, 5, 9]);
  });

  it('compares a row without a ratio by the figure its target judges, when it has one', () => {
    const uploads = (value: number, judged: number): Row => ({ scenario: 'uploads', unit: 'MB/s', value, judged, target: '', met: true });
    // Throughput moved 33%, the RSS growth 3 points of its limit.
    const agreement = runsAgree([uploads(430, 0.05)], [uploads(288, 0.08)], 10);
    expect(agreement.agree).toBe(true);
    expect(Math.round(agreement.rows[0]!.points)).toBe(3);
    expect(runsAgree([uploads(430, 0.05)], [uploads(430, 0.2)], 10).agree).toBe(false);
  });

  it('fails on one row that moved further, or a row missing from either run', () => {
    expect(runsAgree([ratioRowOf('GET', 0.5), ratioRowOf('PATCH', 0.9)], [ratioRowOf('GET', 0.62), ratioRowOf('PATCH', 0.9)], 10).agree).toBe(false);
    expect(runsAgree([msRow('restart', 1000)], [msRow('restart', 1200)], 10).agree).toBe(false);
    expect(runsAgree([ratioRowOf('GET', 0.5)], [ratioRowOf('GET', 0.5), ratioRowOf('PATCH', 0.9)], 10).agree).toBe(false);
    expect(runsAgree([ratioRowOf('GET', 0.5), ratioRowOf('PATCH', 0.9)], [ratioRowOf('GET', 0.5)], 10).agree).toBe(false);
  });

  it('prints how far each row moved and whether the last two runs agree', () => {
    const report = newReport(false);
    report.runs = [[ratioRowOf('GET', 0.6)], [ratioRowOf('GET', 0.64)]];
    report.rows = report.runs[1]!;
    report.stable = true;
    const table = markdown(report);
    expect(table).toContain('4 points from the run before');
    expect(table).toContain('2 runs; the last two agree within 10 points on every row');
  });
});

describe('turn order', () => {
  it('flips every turn, so over an even number of turns each side of a pair goes first as often', () => {
    expect([0, 1, 2, 3].map((turn) => turnOrder(2, turn))).toEqual([
      [1, 0],
      [0, 1],
      [1, 0],
      [0, 1],
    ]);
    expect(turnOrder(3, 0)).toEqual([2, 1, 0]);
    expect(turnOrder(3, 1)).toEqual([0, 1, 2]);
  });
});
