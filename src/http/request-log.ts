/**
 * One log line per request, written when the response finishes: the route pattern rather
 * than the raw URL (ids and query strings stay out of the log), status, duration and user.
 */
import type { RequestHandler } from 'express';
import type { Logger } from '../logger';

export function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const route = req.route?.path !== undefined ? `${req.baseUrl}${String(req.route.path)}` : '(unmatched)';
      logger.http('request', {
        requestId: req.requestId,
        method: req.method,
        route,
        status: res.statusCode,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        userId: req.userId,
        ip: req.ip,
      });
    });
    next();
  };
}
