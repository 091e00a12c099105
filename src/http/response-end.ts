/**
 * Runs `done` once, when the response has been handed to the connection (`finish`) or when
 * the connection closed first (the client left): the moment the request log, the metrics
 * and the request's trace span all record a request.
 */
import type { Response } from 'express';

export function onResponseEnd(res: Response, done: () => void): void {
  let called = false;
  const once = () => {
    if (called) return;
    called = true;
    done();
  };
  res.on('finish', once);
  res.on('close', once);
}
