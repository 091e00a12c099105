/**
 * What records a request when it is over: the request log and the metrics. One middleware
 * takes the start time and puts one `close` listener on the response for all of them, and the
 * route pattern is worked out once, however many record it.
 */
import type { Request, RequestHandler, Response } from 'express';
import { onResponseEnd } from './response-end';

/** A request that is over: answered, or cut short because the client went away (`res.writableFinished` tells which). */
export interface EndedRequest {
  req: Request;
  res: Response;
  /** The route that answered, as its pattern (`/api/v1/sessions/:sessionId`), or `(unmatched)`. */
  route: string;
  /** From this middleware to the end of the response. */
  milliseconds: number;
}

export type RequestEndObserver = (ended: EndedRequest) => void;

/** The route that answered, as its pattern: never the raw URL, which holds ids and query strings. */
export function routePattern(req: Request): string {
  if (req.route?.path === undefined) return '(unmatched)';
  const route = `${req.baseUrl}${String(req.route.path)}`;
  return route.length > 1 && route.endsWith('/') ? route.slice(0, -1) : route;
}

/** Undefined when nothing observes: a request then costs no listener at all. */
export function requestEnd(observers: Array<RequestEndObserver | undefined>): RequestHandler | undefined {
  const active = observers.filter((observer): observer is RequestEndObserver => observer !== undefined);
  if (active.length === 0) return undefined;
  return (req, res, next) => {
    const started = performance.now();
    onResponseEnd(res, () => {
      const ended: EndedRequest = { req, res, route: routePattern(req), milliseconds: performance.now() - started };
      for (const observe of active) observe(ended);
    });
    next();
  };
}
