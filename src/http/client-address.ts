/**
 * The client's address as `trust proxy` resolves it (Express's `req.ip`), worked out once per
 * request, first thing: the per-IP limit keys on it, and the request log and security events
 * report it, even for a client that has gone away by then. `req.ip` parses X-Forwarded-For
 * again on every read.
 */
import type { RequestHandler } from 'express';

declare module 'express-serve-static-core' {
  interface Request {
    clientAddress: string | undefined;
  }
}

export function clientAddress(): RequestHandler {
  return (req, _res, next) => {
    req.clientAddress = req.ip;
    next();
  };
}
