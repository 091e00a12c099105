/** `/api/v1/sessions/:sessionId/messages`: the append-only history, through `req.store` only. */
import { Router } from 'express';
import { appendMessageBody, listMessagesQuery } from '../schemas';
import { parseInput } from '../validate';

export function messagesRouter(): Router {
  const router = Router({ mergeParams: true });

  router.post('/', async (req, res) => {
    const body = parseInput(appendMessageBody, req.body, 'body');
    const sessionId = (req.params as { sessionId: string }).sessionId;
    const message = await req.store.appendMessage(sessionId, { ...body, metadata: body.metadata ?? {} });
    res.status(201).json(message);
  });

  router.get('/', async (req, res) => {
    const query = parseInput(listMessagesQuery, req.query, 'query');
    const sessionId = (req.params as { sessionId: string }).sessionId;
    res.json(await req.store.listMessages(sessionId, { after: query.after, limit: query.limit }));
  });

  return router;
}
