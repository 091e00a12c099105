/** `/sessions/:sessionId/messages`: the append-only history, through `req.store` only. */
import type { IRouter, Request, RequestHandler, Response } from 'express';
import { appendMessageBody, listMessagesQuery } from '../schemas';
import { parseInput } from '../validate';
import { API_BASE } from '../api-base';

type SessionParams = { sessionId: string };

export function messageRoutes(router: IRouter, jsonBody: RequestHandler): void {
  router.post(`${API_BASE}/sessions/:sessionId/messages`, jsonBody, async (req: Request<SessionParams>, res: Response) => {
    const body = parseInput(appendMessageBody, req.body, 'body');
    const message = await req.store.appendMessage(req.params.sessionId, { ...body, metadata: body.metadata ?? {} });
    res.status(201).json(message);
  });

  router.get(`${API_BASE}/sessions/:sessionId/messages`, async (req, res) => {
    const query = parseInput(listMessagesQuery, req.query, 'query');
    res.json(await req.store.listMessages(req.params.sessionId, { after: query.after, limit: query.limit }));
  });
}
