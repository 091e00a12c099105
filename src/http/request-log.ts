/**
 * One log line per request, written when the response finishes (or the client goes away):
 * the route pattern rather than the raw URL (ids and query strings stay out of the log),
 * status, duration, user and the client address as `trust proxy` resolves it.
 */
import type { Request, RequestHandler } from 'express';
import { jsonLineWriterOf, type Logger } from '../logger';
import { onResponseEnd } from './response-end';

/** The route that answered, as its pattern (`/api/v1/sessions/:sessionId`), or `(unmatched)`. */
export function routePattern(req: Request): string {
  if (req.route?.path === undefined) return '(unmatched)';
  const route = `${req.baseUrl}${String(req.route.path)}`;
  return route.length > 1 && route.endsWith('/') ? route.slice(0, -1) : route;
}

/** A string or absent, as JSON.stringify writes an object's member: `,"name":"value"` or nothing. */
function optional(name: string, value: string | undefined): string {
  return value === undefined ? '' : `,"${name}":${JSON.stringify(value)}`;
}

export function requestLog(logger: Logger): RequestHandler {
  const lines = jsonLineWriterOf(logger);
  // LOG_LEVEL is read once, at startup: below info a request costs no line, nor the work of building one.
  const enabled = logger.isLevelEnabled('info');
  return (req, res, next) => {
    if (!enabled) {
      next();
      return;
    }
    const started = performance.now();
    onResponseEnd(res, () => {
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      if (lines) {
        // The members in the order of the object below, as JSON.stringify would write them.
        lines.info(
          'request',
          `"category":"request","requestId":${JSON.stringify(req.requestId)},"method":${JSON.stringify(req.method)},"route":${JSON.stringify(routePattern(req))},"status":${res.statusCode},"durationMs":${durationMs}${optional('userId', req.userId)}${optional('ip', req.ip)}${res.writableFinished ? '' : ',"aborted":true'}`,
        );
        return;
      }
      logger.info('request', {
        category: 'request',
        requestId: req.requestId,
        method: req.method,
        route: routePattern(req),
        status: res.statusCode,
        durationMs,
        userId: req.userId,
        ip: req.ip,
        ...(res.writableFinished ? {} : { aborted: true }),
      });
    });
    next();
  };
}
