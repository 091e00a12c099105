/** A session document as a response body: its JSON as serialized once (sessions/document-json.ts). */
import type { Response } from 'express';
import { documentJson } from '../sessions/document-json';
import type { SessionDocument } from '../sessions/ports';

const JSON_TYPE = 'application/json; charset=utf-8';

/** Sends `document` as `res.json` would; `res.send` handles the status, HEAD and a 304. */
export function sendDocument(res: Response, document: SessionDocument): void {
  res.setHeader('Content-Type', JSON_TYPE);
  res.send(documentJson(document));
}
