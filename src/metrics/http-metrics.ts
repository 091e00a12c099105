/**
 * Counts and times every request by method, route pattern and status, when the response
 * finishes or the client goes away (status then is what was about to be sent). The route is
 * the Express pattern, as in the request log: never the raw URL, which holds ids.
 */
import type { RequestEndObserver } from '../http/request-end';
import type { MetricsRecorder } from './recorder';

export function httpMetrics(metrics: MetricsRecorder): RequestEndObserver {
  return ({ req, res, route, milliseconds }) => metrics.request(req.method, route, res.statusCode, milliseconds / 1000);
}
