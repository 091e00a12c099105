/**
 * Runs `done` once, when the response has been handed to the connection (`finish`) or when
 * the connection closed first (the client left): the moment the request log, the metrics
 * and the request's trace span all record a request. However many of them are on, a response
 * gets one pair of listeners, which runs them all in the order they asked.
 */
import type { Response } from 'express';

const WAITING = Symbol('session-vault response-end callbacks');

type Tracked = Response & { [WAITING]?: Array<() => void> };

export function onResponseEnd(res: Response, done: () => void): void {
  const tracked = res as Tracked;
  const waiting = tracked[WAITING];
  if (waiting) {
    waiting.push(done);
    return;
  }
  const callbacks = [done];
  tracked[WAITING] = callbacks;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    for (const callback of callbacks) callback();
  };
  res.on('finish', end);
  res.on('close', end);
}
