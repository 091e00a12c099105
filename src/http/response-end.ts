/**
 * Runs `done` once, when the response is over: handed to the connection, or cut short because
 * the client went away (`res.writableFinished` tells which). The moment the request log, the
 * metrics and the request's trace span record a request.
 *
 * A ServerResponse emits `close` in both cases (after `finish`, on the next tick, when it
 * completed), so one listener serves where `finish` and `close` used to take two.
 */
import type { Response } from 'express';

export function onResponseEnd(res: Response, done: () => void): void {
  res.on('close', done);
}
