/**
 * What METRICS=on costs a request: the GET of one session (1 KB state) on a service with
 * metrics on against the same service with metrics off, run alternately in the same minute.
 * Target: >= 95% of the requests per second without metrics.
 */
import { json, measurePair } from '../load';
import type { BenchOptions } from '../options';
import { ratioRow, type Row } from '../report';
import { bearer, scenarioScope, startService, type Service } from '../service';

const STATE_1KB = { notes: 'x'.repeat(1000) };

export async function metricsScenarios(options: BenchOptions): Promise<Row[]> {
  const scope = scenarioScope();
  try {
    const off = await scope.track(startService(await scope.dir('metrics-off')));
    const on = await scope.track(startService(await scope.dir('metrics-on'), { METRICS: 'on', METRICS_PORT: '0' }));
    const readSession = async (target: Service) => {
      const { id } = await target.call<{ id: string }>('reader', 'POST', '/api/v1/sessions', { title: 'read me', state: STATE_1KB });
      const spec = json('GET', `/api/v1/sessions/${id}`, bearer('reader'));
      return () => spec;
    };
    const measured = await measurePair(
      options,
      { target: on, request: await readSession(on) },
      { target: off, request: await readSession(off) },
    );
    return [
      ratioRow('GET /api/v1/sessions/:id, METRICS=on', measured, 'the same GET with METRICS off', 0.95, '>= 95% of the GET without metrics'),
    ];
  } finally {
    await scope.close();
  }
}
