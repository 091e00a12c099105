/**
 * The request log and the metrics record a request from one `close` listener
 * (src/http/request-end.ts): each is told the same route pattern and duration, once, for an
 * answered request and for one the client left; with nothing to tell, no middleware at all.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { requestEnd, type EndedRequest } from '../../src/http/request-end';

function appObservedBy(count: number) {
  const seen: Array<Array<Pick<EndedRequest, 'route' | 'milliseconds'> & { status: number; finished: boolean }>> = Array.from({ length: count }, () => []);
  const listeners: number[] = [];
  let arrived = () => {};
  const waiting = new Promise<void>((resolve) => (arrived = resolve));
  const app = express();
  app.use(
    requestEnd(
      seen.map((into) => ({ route, milliseconds, res }: EndedRequest) => into.push({ route, milliseconds, status: res.statusCode, finished: res.writableFinished })),
    )!,
  );
  app.use((_req, res, next) => {
    listeners.push(res.listenerCount('close'));
    next();
  });
  app.get('/items/:id', (_req, res) => {
    res.status(203).json({ ok: true });
  });
  app.get('/never', () => {
    // never answers: the client gives up first
    arrived();
  });
  return { app, seen, listeners, waiting };
}

describe('requestEnd', () => {
  it('tells every observer of each request once, from one listener, with its pattern and duration', async () => {
    const { app, seen, listeners } = appObservedBy(3);
    await request(app).get('/items/42').expect(203);
    await request(app).get('/nowhere').expect(404);
    await new Promise((resolve) => setImmediate(resolve));
    expect(listeners).toEqual([1, 1]);
    for (const observed of seen) {
      expect(observed.map(({ route, status, finished }) => ({ route, status, finished }))).toEqual([
        { route: '/items/:id', status: 203, finished: true },
        { route: '(unmatched)', status: 404, finished: true },
      ]);
      expect(observed.every(({ milliseconds }) => milliseconds >= 0 && milliseconds < 60_000)).toBe(true);
    }
    expect(seen[1]).toEqual(seen[0]);
  });

  it('tells them of a request the client left, as not finished', async () => {
    const { app, seen, waiting } = appObservedBy(2);
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const left = new Promise<void>((resolve) => {
        const req = http.get({ port, host: '127.0.0.1', path: '/never' });
        req.on('error', () => resolve());
        void waiting.then(() => req.destroy());
      });
      await left;
      const deadline = Date.now() + 10_000;
      while (seen[1]!.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      for (const observed of seen) expect(observed.map(({ route, finished }) => ({ route, finished }))).toEqual([{ route: '/never', finished: false }]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('is no middleware when nothing observes', () => {
    expect(requestEnd([undefined, undefined])).toBeUndefined();
  });
});
