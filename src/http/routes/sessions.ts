/** `/sessions`: a user's sessions, through `req.store` only. */
import type { IRouter, Request, RequestHandler, Response } from 'express';
import { etagOf } from '../../sessions/session-store';
import { parseIfMatch } from '../conditional';
import { createSessionBody, listSessionsQuery, updateSessionBody } from '../schemas';
import { parseInput } from '../validate';
import { API_BASE } from '../api-base';
import { sendDocument } from '../document-body';

type SessionParams = { sessionId: string };

export function sessionRoutes(router: IRouter, jsonBody: RequestHandler): void {
  router.post(`${API_BASE}/sessions`, jsonBody, async (req, res) => {
    const body = parseInput(createSessionBody, req.body ?? {}, 'body');
    const session = await req.store.createSession({ title: body.title ?? 'Untitled', state: body.state ?? {} });
    sendDocument(res.status(201).location(`${API_BASE}/sessions/${session.id}`).set('ETag', etagOf(session)), session);
  });

  router.get(`${API_BASE}/sessions`, async (req, res) => {
    const query = parseInput(listSessionsQuery, req.query, 'query');
    res.json(await req.store.listSessions({ cursor: query.cursor, limit: query.limit }));
  });

  router.get(`${API_BASE}/sessions/:sessionId`, async (req, res) => {
    const session = await req.store.getSession(req.params.sessionId);
    // With the ETag set, Express answers a matching If-None-Match with 304 itself.
    sendDocument(res.set('ETag', etagOf(session)), session);
  });

  router.patch(`${API_BASE}/sessions/:sessionId`, jsonBody, async (req: Request<SessionParams>, res: Response) => {
    const body = parseInput(updateSessionBody, req.body, 'body');
    const session = await req.store.updateSession(req.params.sessionId, body, parseIfMatch(req.get('If-Match')));
    sendDocument(res.set('ETag', etagOf(session)), session);
  });

  router.delete(`${API_BASE}/sessions/:sessionId`, async (req, res) => {
    await req.store.deleteSession(req.params.sessionId);
    res.status(204).end();
  });
}
