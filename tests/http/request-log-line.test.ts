/**
 * Request lines are written by the JSON logger's own line writer rather than through winston
 * (see jsonLineWriterOf in src/logger.ts). A reader of the log must not be able to tell: each
 * line is, byte for byte but for its timestamp, what winston writes for the same fields.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import express from 'express';
import request from 'supertest';
import { requestEnd } from '../../src/http/request-end';
import { requestLog } from '../../src/http/request-log';
import { createLogger, jsonLineWriterOf, type TraceFields } from '../../src/logger';

function capture() {
  const stream = new PassThrough();
  const written: string[] = [];
  let partial = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    written.push(...parts);
  });
  return { stream, written };
}

function appWith(traceFields?: TraceFields) {
  const { stream, written } = capture();
  const logger = createLogger({ level: 'info', format: 'json' }, stream, traceFields);
  const app = express();
  app.use((req, _res, next) => {
    req.requestId = 'request-id-"quoted"\\';
    // As the service does first thing: the address is known even after the client left.
    req.clientAddress = req.ip;
    next();
  });
  app.use(requestEnd([requestLog(logger)])!);
  app.get('/signed-in/:id', (req, res) => {
    req.userId = 'alice@example.com';
    res.json({ ok: true });
  });
  app.get('/anonymous', (_req, res) => {
    res.status(401).json({});
  });
  app.get('/slow', () => {
    // never answers: the client gives up
  });
  return { app, logger, written };
}

/** What winston itself writes for the fields of `line`, through the same logger. */
async function throughWinston(logger: ReturnType<typeof createLogger>, written: string[], line: string): Promise<string> {
  const { timestamp: _t, level: _l, message, ...fields } = JSON.parse(line) as Record<string, unknown>;
  const before = written.length;
  logger.info(String(message), fields);
  await new Promise((resolve) => setImmediate(resolve));
  return written[before]!;
}

const withoutTimestamp = (line: string) => line.replace(/^\{"timestamp":"[^"]+",/, '{');

/** The fields in the order the request log has always written them (an operator's parser may rely on it). */
const FIELDS = ['timestamp', 'level', 'message', 'category', 'requestId', 'method', 'route', 'status', 'durationMs'];

describe('request lines', () => {
  it('are written by the line writer of a JSON logger, and by winston for any other', () => {
    expect(jsonLineWriterOf(createLogger({ level: 'info', format: 'json' }, new PassThrough()))).toBeDefined();
    expect(jsonLineWriterOf(createLogger({ level: 'info', format: 'pretty' }, new PassThrough()))).toBeUndefined();
  });

  it.each([
    ['signed in', '/signed-in/42'],
    ['without a user', '/anonymous'],
  ])('equal what winston writes for the same fields: %s', async (_name, path) => {
    const { app, logger, written } = appWith();
    await request(app).get(path);
    const line = written.at(-1)!;
    expect(JSON.parse(line)).toMatchObject({ level: 'info', message: 'request', category: 'request', method: 'GET' });
    expect(Object.keys(JSON.parse(line))).toEqual([...FIELDS, ...(path === '/anonymous' ? [] : ['userId']), 'ip']);
    expect(withoutTimestamp(await throughWinston(logger, written, line))).toBe(withoutTimestamp(line));
  });

  it('equal what winston writes with the trace ids, and for a request the client left', async () => {
    const ids = { trace_id: '0af7651916cd43dd8448eb211c80319c', span_id: 'b7ad6b7169203331' };
    const { app, logger, written } = appWith(() => ids);
    await request(app).get('/signed-in/1');
    const signedIn = written.at(-1)!;
    expect(JSON.parse(signedIn)).toMatchObject(ids);
    expect(Object.keys(JSON.parse(signedIn))).toEqual([...FIELDS, 'userId', 'ip', 'trace_id', 'span_id']);
    expect(withoutTimestamp(await throughWinston(logger, written, signedIn))).toBe(withoutTimestamp(signedIn));

    const server = http.createServer(app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const before = written.length;
    const left = http.get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/slow`);
    left.on('error', () => undefined);
    setTimeout(() => left.destroy(), 100);
    while (written.length === before) await new Promise((resolve) => setTimeout(resolve, 10));
    server.close();
    const aborted = written.at(-1)!;
    expect(JSON.parse(aborted)).toMatchObject({ aborted: true, status: 200 });
    expect(Object.keys(JSON.parse(aborted))).toEqual([...FIELDS, 'ip', 'aborted', 'trace_id', 'span_id']);
    expect(withoutTimestamp(await throughWinston(logger, written, aborted))).toBe(withoutTimestamp(aborted));
  });
});
