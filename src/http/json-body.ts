/**
 * JSON bodies only, and bounded: a body in another media type is a 415 before anything is
 * read, a body over MAX_JSON_BYTES a 413 before it is parsed, and a parsed body nested deeper
 * than MAX_JSON_DEPTH or holding a number JSON cannot carry back (`1e999` parses to Infinity)
 * a 400 before anything else looks at it (see json-shape.ts).
 */
import express, { type RequestHandler } from 'express';
import { BadRequest, UnsupportedMediaType } from '../errors';
import { jsonShapeProblem } from './json-shape';

export function jsonBody(limitBytes: number, maxDepth: number): RequestHandler {
  const parse = express.json({ limit: limitBytes, strict: true, type: 'application/json' });
  return (req, res, next) => {
    // `req.is` is null when there is no body, false when the body is something else. An
    // explicit `Content-Length: 0` (what many clients send for a bodiless POST) is no body.
    const empty = req.headers['content-length'] === '0' && req.headers['transfer-encoding'] === undefined;
    if (!empty && req.is('application/json') === false) {
      next(new UnsupportedMediaType('Send the body as application/json.'));
      return;
    }
    parse(req, res, (error?: unknown) => {
      if (error !== undefined && error !== null) {
        next(error);
        return;
      }
      const problem = jsonShapeProblem(req.body, maxDepth);
      if (problem === null) next();
      else if (problem.kind === 'too-deep') {
        next(new BadRequest(`The body is nested deeper than ${problem.maxDepth} levels (MAX_JSON_DEPTH).`, { limit: 'MAX_JSON_DEPTH' }));
      } else {
        next(new BadRequest(`${problem.path}: must be a finite number (1e999 and the like overflow to Infinity, which JSON cannot store).`));
      }
    });
  };
}
