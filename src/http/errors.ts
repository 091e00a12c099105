/**
 * The one error middleware: every error becomes `application/problem+json` (RFC 9457)
 * with the request id. Only AppErrors and the 4xx errors of Express's own parsers say what
 * went wrong; anything else is a 500 whose body names no cause, path or stack.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, InsufficientStorage, NotFound, StorageFault } from '../errors';
import { securityEvent, type Logger } from '../logger';

const STATUS_TITLES: Record<number, string> = {
  400: 'Bad Request',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
};

const PARSER_DETAILS: Record<string, string> = {
  'entity.too.large': 'The body is larger than this service accepts (MAX_JSON_BYTES).',
  'entity.parse.failed': 'The body is not valid JSON.',
  'encoding.unsupported': 'The body uses a content encoding this service does not accept.',
  'charset.unsupported': 'The body must be UTF-8.',
  'request.aborted': 'The request was aborted.',
};

interface HttpishError {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  expose?: unknown;
}

export function notFoundHandler(): RequestHandler {
  return (_req, _res, next) => next(new NotFound('No such route.'));
}

export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    let status = 500;
    let slug = 'internal-error';
    let title = 'Internal Server Error';
    let detail = 'The request could not be completed.';
    let extras: Record<string, string | number | boolean> = {};

    if (error instanceof AppError) {
      ({ status, slug, title, detail } = error);
      extras = error.extras;
      res.set(error.headers);
      if (error instanceof InsufficientStorage) logger.error('disk full', { requestId: req.requestId });
      if (error instanceof StorageFault) securityEvent(logger, 'path rejected', { requestId: req.requestId, userId: req.userId, what: error.what });
    } else {
      const e = (error ?? {}) as HttpishError;
      const candidate = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
      if (candidate >= 400 && candidate < 500 && e.expose !== false) {
        status = candidate;
        title = STATUS_TITLES[status] ?? 'Bad Request';
        slug = title.toLowerCase().replace(/ /g, '-');
        detail = (typeof e.type === 'string' && PARSER_DETAILS[e.type]) || 'The request is malformed.';
      } else {
        logger.error('unhandled error', {
          requestId: req.requestId,
          error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error),
        });
      }
    }

    if (res.headersSent) {
      res.destroy();
      return;
    }
    res
      .status(status)
      .type('application/problem+json')
      .send(JSON.stringify({ type: `/problems/${slug}`, title, status, detail, requestId: req.requestId, ...extras }));
  };
}
