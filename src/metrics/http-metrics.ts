/**
 * Counts and times every request by method, route pattern and status, when the response
 * finishes or the client goes away (status then is what was about to be sent). The route is
 * the Express pattern, as in the request log: never the raw URL, which holds ids.
 */
import type { RequestHandler } from 'express';
import { routePattern } from '../http/request-log';
import { onResponseEnd } from '../http/response-end';
import type { MetricsRecorder } from './recorder';

export function httpMetrics(metrics: MetricsRecorder): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    onResponseEnd(res, () => metrics.request(req.method, routePattern(req), res.statusCode, (performance.now() - started) / 1000));
    next();
  };
}
