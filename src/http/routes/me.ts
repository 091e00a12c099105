/** `/me`: who the token says you are, what you use, and erasing all of it. */
import type { IRouter } from 'express';
import { FILE_OVERHEAD_BYTES } from '../../sessions/session-store';
import { API_BASE } from '../api-base';

export function meRoutes(router: IRouter): void {
  router.get(`${API_BASE}/me`, async (req, res) => {
    res.json({
      userId: req.store.userId,
      usage: await req.store.usage(),
      limits: { ...req.store.limits, fileOverheadBytes: FILE_OVERHEAD_BYTES },
    });
  });

  router.delete(`${API_BASE}/me`, async (req, res) => {
    await req.store.eraseAll();
    res.status(204).end();
  });
}
