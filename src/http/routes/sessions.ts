/** `/api/v1/sessions`: a user's sessions, through `req.store` only. */
import { Router } from 'express';
import { etagOf } from '../../storage/session-store';
import { parseIfMatch } from '../conditional';
import { createSessionBody, listSessionsQuery, updateSessionBody } from '../schemas';
import { parseInput } from '../validate';

export function sessionsRouter(): Router {
  const router = Router();

  router.post('/', async (req, res) => {
    const body = parseInput(createSessionBody, req.body ?? {}, 'body');
    const session = await req.store.createSession({ title: body.title ?? 'Untitled', state: body.state ?? {} });
    res.status(201).location(`${req.baseUrl}/${session.id}`).set('ETag', etagOf(session)).json(session);
  });

  router.get('/', async (req, res) => {
    const query = parseInput(listSessionsQuery, req.query, 'query');
    res.json(await req.store.listSessions({ cursor: query.cursor, limit: query.limit }));
  });

  router.get('/:sessionId', async (req, res) => {
    const session = await req.store.getSession(req.params.sessionId);
    // With the ETag set, Express answers a matching If-None-Match with 304 itself.
    res.set('ETag', etagOf(session)).json(session);
  });

  router.patch('/:sessionId', async (req, res) => {
    const body = parseInput(updateSessionBody, req.body, 'body');
    const session = await req.store.updateSession(req.params.sessionId, body, parseIfMatch(req.get('If-Match')));
    res.set('ETag', etagOf(session)).json(session);
  });

  router.delete('/:sessionId', async (req, res) => {
    await req.store.deleteSession(req.params.sessionId);
    res.status(204).end();
  });

  return router;
}
