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
    // The raw header and setHeader: what req.get and res.set come down to for this header.
    const incoming = req.headers['x-request-id'];
    req.requestId = typeof incoming === 'string' && WELL_FORMED.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', req.requestId);
    next();
  };
}
