/**
 * The series histogram against prom-client's own Histogram: the same observations give the
 * same scrape text, values on a bucket's bound, above the last bound and zero included.
 */
import { Histogram, Registry } from 'prom-client';
import { SeriesHistogram } from '../../src/metrics/series-histogram';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const config = { name: 'test_duration_seconds', help: 'A test histogram.', buckets: BUCKETS };

function pair(labelNames: string[]) {
  const ours = new Registry();
  const theirs = new Registry();
  const series = new SeriesHistogram({ ...config, labelNames }, ours);
  const histogram = new Histogram({ ...config, labelNames, registers: [theirs] });
  return { ours, theirs, series, histogram };
}

it('scrapes as prom-client scrapes the same observations', async () => {
  const { ours, theirs, series, histogram } = pair(['method', 'route', 'status']);
  const observations: Array<[string, string, number, number]> = [
    ['GET', '/a/:id', 200, 0],
    ['GET', '/a/:id', 200, 0.001],
    ['GET', '/a/:id', 200, 0.0010001],
    ['GET', '/a/:id', 404, 0.5],
    ['POST', '/a', 201, 1],
    ['POST', '/a', 201, 7.5],
    ['GET', '/b', 200, 0.05],
    ['GET', '/a/:id', 200, 0.2],
  ];
  for (const [method, route, status, seconds] of observations) {
    series.series(method, route, status).observe(seconds);
    histogram.observe({ method, route, status: String(status) }, seconds);
  }
  const text = await ours.metrics();
  expect(text).toBe(await theirs.metrics());
  expect(text).toContain('test_duration_seconds_bucket{le="0.001",method="GET",route="/a/:id",status="200"} 2');
  expect(text).toContain('test_duration_seconds_bucket{le="+Inf",method="POST",route="/a",status="201"} 2');
  expect(text).toContain('test_duration_seconds_bucket{le="1",method="POST",route="/a",status="201"} 1');
  // prom-client's JSON also carries each sample's exemplar (none here).
  const withoutExemplars = (metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
    metrics.map((metric) => ({ ...metric, values: metric.values.map((value) => { const { exemplar: _, ...rest } = value as typeof value & { exemplar?: unknown }; return rest; }) }));
  expect(await ours.getMetricsAsJSON()).toEqual(withoutExemplars(await theirs.getMetricsAsJSON()));
});

it('gives one series per label set, whatever the type of a value', () => {
  const { series } = pair(['operation', 'outcome']);
  const ok = series.series('metadata.getSession', 'ok');
  expect(series.series('metadata.getSession', 'ok')).toBe(ok);
  expect(series.series('metadata.getSession', 'error')).not.toBe(ok);
  expect(ok.labels).toEqual({ operation: 'metadata.getSession', outcome: 'ok' });
});

it('starts empty again after a reset, as the registry resets its metrics', async () => {
  const { ours, series } = pair(['queue']);
  series.series('documents').observe(0.5);
  ours.resetMetrics();
  expect((await series.get()).values).toEqual([]);
  series.series('documents').observe(0.002);
  expect((await series.get()).values.find((v) => v.metricName === 'test_duration_seconds_count')).toMatchObject({ labels: { queue: 'documents' }, value: 1 });
});

it('refuses buckets that do not ascend and a histogram without labels', () => {
  expect(() => new SeriesHistogram({ ...config, buckets: [0.1, 0.1], labelNames: ['a'] }, new Registry())).toThrow(/ascend/);
  expect(() => new SeriesHistogram({ ...config, labelNames: [] }, new Registry())).toThrow(/at least one label/);
});
