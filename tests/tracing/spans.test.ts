/**
 * Tracing on (as OTEL_EXPORTER_OTLP_ENDPOINT turns it on), with the SDK's in-memory exporter
 * in place of OTLP: a request's span is the root of its auth and storage spans, every span
 * carries the request id, and the request's log line carries its trace_id and span_id.
 */
import { rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { createApp } from '../../src/app';
import { createLogger } from '../../src/logger';
import { prepareService, type PreparedService } from '../../src/startup';
import { createTracing } from '../../src/tracing/open-telemetry';
import type { Tracing } from '../../src/tracing/tracing';
import { TEST_SECRET, configFor, makeTempDir } from '../helpers/test-app';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let service: PreparedService;
let app: ReturnType<typeof createApp>;
let dataDir: string;
let logText = '';

const token = jwt.sign({ sub: 'traced-user' }, TEST_SECRET, { algorithm: 'HS256', expiresIn: 600 });
const lines = () => logText.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  dataDir = await makeTempDir();
  tracing = createTracing({ serviceName: 'session-vault-test', processor: new SimpleSpanProcessor(exporter) });
  const stream = new PassThrough();
  stream.setEncoding('utf8').on('data', (chunk: string) => (logText += chunk));
  const logger = createLogger({ level: 'info', format: 'json' }, stream, () => tracing.logFields());
  const config = configFor({ DATA_DIR: dataDir, LOG_LEVEL: 'info' });
  const prepared = await prepareService(config, logger, { tracing });
  if (!prepared.ok) throw new Error(prepared.errors.join('\n'));
  service = prepared.service;
  app = createApp(config, service.deps);
});
afterAll(async () => {
  await service?.release();
  await tracing?.shutdown();
  await rm(dataDir, { recursive: true, force: true });
});
beforeEach(() => exporter.reset());

function spansOf(requestId: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.attributes['request.id'] === requestId);
}

it('a request span is the parent of its auth and storage spans, all with the request id', async () => {
  const created = await request(app).post('/api/v1/sessions').set('Authorization', `Bearer ${token}`).send({ title: 't' });
  expect(created.status).toBe(201);
  const read = await request(app).get(`/api/v1/sessions/${created.body.id as string}`).set('Authorization', `Bearer ${token}`);
  expect(read.status).toBe(200);
  const requestId = read.get('X-Request-Id')!;

  const spans = spansOf(requestId);
  const root = spans.find((s) => s.name === 'GET /api/v1/sessions/:sessionId');
  expect(root).toBeDefined();
  expect(root!.parentSpanContext).toBeUndefined();
  expect(root!.attributes).toMatchObject({ 'http.route': '/api/v1/sessions/:sessionId', 'http.response.status_code': 200, 'http.request.method': 'GET' });
  const children = spans.filter((s) => s !== root);
  expect(children.map((s) => s.name).sort()).toEqual(['auth', 'storage metadata.readSession']);
  for (const child of children) {
    expect(child.spanContext().traceId).toBe(root!.spanContext().traceId);
    expect(child.parentSpanContext?.spanId).toBe(root!.spanContext().spanId);
  }
  expect(root!.resource.attributes['service.name']).toBe('session-vault-test');
  // No id of a user or session in any attribute.
  for (const span of spans) for (const value of Object.values(span.attributes)) {
    expect(String(value)).not.toContain('traced-user');
    expect(String(value)).not.toContain(created.body.id as string);
  }

  const line = lines().find((l) => l.message === 'request' && l.requestId === requestId);
  expect(line).toMatchObject({ trace_id: root!.spanContext().traceId, span_id: root!.spanContext().spanId });
});

it('a refused token ends the auth span as an error with its reason class', async () => {
  const refused = await request(app).get('/api/v1/me');
  expect(refused.status).toBe(401);
  const spans = spansOf(refused.get('X-Request-Id')!);
  const auth = spans.find((s) => s.name === 'auth');
  expect(auth?.attributes['auth.failure']).toBe('missing_token');
  expect(auth?.status.code).toBe(2); // SpanStatusCode.ERROR
  expect(spans.find((s) => s.name === 'GET (unmatched)')?.attributes['http.response.status_code']).toBe(401);
  const securityLine = lines().find((l) => l.message === 'token rejected' && l.requestId === refused.get('X-Request-Id'));
  expect(securityLine?.trace_id).toBe(auth!.spanContext().traceId);
});
