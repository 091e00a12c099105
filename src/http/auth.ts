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
import { authFailureClass } from '../metrics/auth-failure-class';
import type { MetricsRecorder } from '../metrics/recorder';

declare module 'express-serve-static-core' {
  interface Request {
    userId?: string;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/;

export function authenticate(verifier: TokenVerifier, logger: Logger, metrics?: MetricsRecorder): RequestHandler {
  return (req, _res, next) => {
    const refused = (error: unknown) => {
      if (error instanceof Unauthorized) {
        securityEvent(logger, 'token rejected', { requestId: req.requestId, reason: error.reason, ip: req.clientAddress });
        metrics?.authFailure(authFailureClass(error.reason));
      }
      next(error);
    };
    const header = req.headers.authorization;
    const match = header === undefined ? null : BEARER.exec(header.trim());
    try {
      if (!match) throw new Unauthorized(header === undefined ? 'no bearer token' : 'malformed authorization header');
      const userId = verifier.verify(match[1]!);
      // A promise only while the token's key is being fetched; the common case stays synchronous.
      if (typeof userId !== 'string') {
        userId.then((id) => {
          req.userId = id;
          next();
        }, refused);
        return;
      }
      req.userId = userId;
      next();
    } catch (error) {
      refused(error);
    }
  };
}
