/**
 * Gives every request an id: a well-formed incoming `X-Request-Id` is kept (so a proxy's
 * id follows the request through), anything else is replaced by a new UUID. The id is
 * echoed on every response and appears in every problem body and log line.
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

declare module 'express-serve-static-core' {
  interface Request {
    requestId: string;
  }
}

const WELL_FORMED = /^[A-Za-z0-9._:-]{8,128}$/;

export function requestId(): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('X-Request-Id');
    req.requestId = incoming !== undefined && WELL_FORMED.test(incoming) ? incoming : randomUUID();
    res.set('X-Request-Id', req.requestId);
    next();
  };
}
