/**
 * Several middlewares run as one layer of the app's router: each in turn, an error (passed or
 * thrown, or a rejected promise) skipping the rest as a router would. A router spends about a
 * microsecond per layer on every request that passes it; the /api/v1 gate is four of them.
 * An undefined handler (a feature turned off) is left out when the series is built.
 */
import type { RequestHandler } from 'express';

export function inSeries(...given: Array<RequestHandler | undefined>): RequestHandler {
  const handlers = given.filter((handler): handler is RequestHandler => handler !== undefined);
  return (req, res, next) => {
    let at = 0;
    const step = (error?: unknown): void => {
      if (error !== undefined && error !== null) {
        // Anything passed is an error here. A router would take 'route', 'router' or a falsy
        // value as "go on" and reach the routes with the rest of the series skipped.
        next(error instanceof Error ? error : new Error(`a middleware in series passed ${typeof error === 'string' ? `'${error}'` : String(error)}`));
        return;
      }
      const handler = handlers[at++];
      if (handler === undefined) {
        next();
        return;
      }
      try {
        const result: unknown = handler(req, res, step);
        if (result instanceof Promise) result.catch(next);
      } catch (thrown) {
        next(thrown);
      }
    };
    step();
  };
}
