import express, { type RequestHandler } from 'express';
import request from 'supertest';
import { inSeries } from '../../src/http/in-series';

/** An app whose one layer runs `handlers` in series, then answers with what ran. */
function appWith(...handlers: Array<RequestHandler | undefined>) {
  const app = express();
  app.use((req, _res, next) => {
    (req as unknown as { ran: string[] }).ran = [];
    next();
  });
  app.use(inSeries(...handlers));
  app.get('/', (req, res) => {
    res.json({ ran: (req as unknown as { ran: string[] }).ran });
  });
  app.use(((error, req, res, _next) => {
    res.status(500).json({ error: String((error as Error).message), ran: (req as unknown as { ran: string[] }).ran });
  }) as express.ErrorRequestHandler);
  return app;
}

const mark =
  (name: string): RequestHandler =>
  (req, _res, next) => {
    (req as unknown as { ran: string[] }).ran.push(name);
    next();
  };

describe('inSeries', () => {
  it('runs each middleware in order, then the next layer', async () => {
    const later: RequestHandler = (req, _res, next) => {
      setImmediate(() => mark('c')(req, _res, next));
    };
    expect((await request(appWith(mark('a'), mark('b'), later)).get('/')).body).toEqual({ ran: ['a', 'b', 'c'] });
  });

  it('leaves out a handler that is undefined (a feature turned off), and runs the rest', async () => {
    expect((await request(appWith(undefined, mark('a'), undefined, mark('b'), undefined)).get('/')).body).toEqual({ ran: ['a', 'b'] });
  });

  it.each<[string, RequestHandler]>([
    ['passed', (_req, _res, next) => next(new Error('refused'))],
    [
      'thrown',
      () => {
        throw new Error('refused');
      },
    ],
    ['rejected', async () => Promise.reject(new Error('refused'))],
  ])('skips the rest on an error %s, to the error handler', async (_how, failing) => {
    const res = await request(appWith(mark('a'), failing, mark('b'))).get('/');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'refused', ran: ['a'] });
  });
});

describe('inSeries, against the router conventions', () => {
  it.each<[string, unknown]>([
    ["'route'", 'route'],
    ["'router'", 'router'],
    ['false', false],
    ['0', 0],
    ["''", ''],
  ])('takes next(%s) as an error, never as leave to skip the rest', async (_name, value) => {
    const res = await request(appWith(mark('a'), (_req, _res, next) => next(value as Error), mark('b'))).get('/');
    expect(res.status).toBe(500);
    expect(res.body.ran).toEqual(['a']);
  });
});
