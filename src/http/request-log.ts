/**
 * One log line per request, written when the response finishes (or the client goes away):
 * the route pattern rather than the raw URL (ids and query strings stay out of the log),
 * status, duration, user and the client address as `trust proxy` resolves it.
 */
import { jsonLineWriterOf, type Logger } from '../logger';
import type { RequestEndObserver } from './request-end';

/** A string or absent, as JSON.stringify writes an object's member: `,"name":"value"` or nothing. */
function optional(name: string, value: string | undefined): string {
  return value === undefined ? '' : `,"${name}":${JSON.stringify(value)}`;
}

/** Undefined below info: LOG_LEVEL is read once, at startup, and a request then costs no line, nor the work of building one. */
export function requestLog(logger: Logger): RequestEndObserver | undefined {
  if (!logger.isLevelEnabled('info')) return undefined;
  const lines = jsonLineWriterOf(logger);
  return ({ req, res, route, milliseconds }) => {
    const durationMs = Math.round(milliseconds * 10) / 10;
    const ip = req.clientAddress;
    if (lines) {
      // The members in the order of the object below, as JSON.stringify would write them.
      lines.info(
        'request',
        `"category":"request","requestId":${JSON.stringify(req.requestId)},"method":${JSON.stringify(req.method)},"route":${JSON.stringify(route)},"status":${res.statusCode},"durationMs":${durationMs}${optional('userId', req.userId)}${optional('ip', ip)}${res.writableFinished ? '' : ',"aborted":true'}`,
      );
      return;
    }
    logger.info('request', {
      category: 'request',
      requestId: req.requestId,
      method: req.method,
      route,
      status: res.statusCode,
      durationMs,
      userId: req.userId,
      ip,
      ...(res.writableFinished ? {} : { aborted: true }),
    });
  };
}
