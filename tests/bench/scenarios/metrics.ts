/**
 * What observability costs a request: the GET of one session (1 KB state) on a service with
 * METRICS=on, and on one with tracing on (OTEL_EXPORTER_OTLP_ENDPOINT at a local sink that
 * accepts every export), each against the same service with both off, run alternately in the
 * same minute. Metrics: >= 95% of the requests per second without; tracing: reported only.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { measurePair } from '../load';
import type { BenchOptions } from '../options';
import { ratioRow, type Row } from '../report';
import { measureReadPairs, readOneSession } from '../session-reads';
import { scenarioScope, startService } from '../service';

export async function metricsScenarios(options: BenchOptions): Promise<Row[]> {
  const scope = scenarioScope();
  try {
    const measured = await measureReadPairs(options, scope, 'metrics', { METRICS: 'on', METRICS_PORT: '0' }, {});
    const metricsRow = ratioRow('GET /api/v1/sessions/:id, METRICS=on', measured, 'the same GET with METRICS off', 0.95, '>= 95% of the GET without metrics');

    // A collector that takes every OTLP/HTTP export and answers 200, so the spans are really sent.
    const sink = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'));
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    scope.defer(() => new Promise<void>((resolve) => sink.close(() => resolve())));
    const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
    const traced = await scope.track(startService(await scope.dir('traced'), { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }));
    const off = await scope.track(startService(await scope.dir('untraced')));
    const tracedMeasured = await measurePair(
      options,
      { target: traced, request: await readOneSession(traced) },
      { target: off, request: await readOneSession(off) },
    );
    return [
      metricsRow,
      // Reported only: what turning tracing on costs. Off, it costs nothing (nothing is loaded:
      // tests/process/observability-off.test.ts), which is what the target is about.
      ratioRow('GET /api/v1/sessions/:id, tracing on (OTLP/HTTP to a local sink)', tracedMeasured, 'the same GET with tracing off', 0, 'reported only'),
    ];
  } finally {
    await scope.close();
  }
}
