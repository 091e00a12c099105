/**
 * JSON bodies only, and bounded: a body in another media type is a 415 before anything is
 * read, a body over MAX_JSON_BYTES a 413 before it is parsed.
 */
import express, { type RequestHandler } from 'express';
import { UnsupportedMediaType } from '../errors';

export function jsonBody(limitBytes: number, _maxDepth: number): RequestHandler {
  const parse = express.json({ limit: limitBytes, strict: true, type: 'application/json' });
  return (req, res, next) => {
    // `req.is` is null when there is no body, false when the body is something else. An
    // explicit `Content-Length: 0` (what many clients send for a bodiless POST) is no body.
    const empty = req.headers['content-length'] === '0' && req.headers['transfer-encoding'] === undefined;
    if (!empty && req.is('application/json') === false) {
      next(new UnsupportedMediaType('Send the body as application/json.'));
      return;
    }
    parse(req, res, next);
  };
}
