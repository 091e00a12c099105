/**
 * The bench's own arithmetic: a row's ratio is the median of its turns' ratios with the lowest
 * and highest printed beside it, and a CPU profile's self time is summed by where the code lives.
 */
import { markdown, newReport, ratioRow } from '../bench/report';
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
