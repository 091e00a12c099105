/**
 * Tenancy: the only place that constructs a SessionStore. It binds `req.store` to the
 * authenticated user id; routers reach storage only through it.
 */
import type { RequestHandler } from 'express';
import { SessionStore, type StoreContext } from '../sessions/session-store';

declare module 'express-serve-static-core' {
  interface Request {
    store: SessionStore;
  }
}

export function tenancy(context: StoreContext): RequestHandler {
  return (req, _res, next) => {
    // Throws if authentication did not run or produced no valid id: never a default user.
    req.store = new SessionStore(req.userId, context);
    next();
  };
}
