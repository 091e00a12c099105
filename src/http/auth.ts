/**
 * JWT authentication: the only place that sets `req.userId`.
 *
 * The token is read from `Authorization: Bearer` only (never a query parameter or cookie,
 * which leak into logs and history). No header, query or body field can change the id.
 */
import type { RequestHandler } from 'express';
import type { TokenVerifier } from '../auth/token-verifier';
import { Unauthorized } from '../errors';
import { securityEvent, type Logger } from '../logger';

declare module 'express-serve-static-core' {
  interface Request {
    userId?: string;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/;

export function authenticate(verifier: TokenVerifier, logger: Logger): RequestHandler {
  return (req, _res, next) => {
    const header = req.get('Authorization');
    const match = header === undefined ? null : BEARER.exec(header.trim());
    try {
      if (!match) throw new Unauthorized(header === undefined ? 'no bearer token' : 'malformed authorization header');
      req.userId = verifier.verify(match[1]!);
      next();
    } catch (error) {
      if (error instanceof Unauthorized) {
        securityEvent(logger, 'token rejected', { requestId: req.requestId, reason: error.reason, ip: req.ip });
      }
      next(error);
    }
  };
}
