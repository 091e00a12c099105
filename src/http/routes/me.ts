/** `/me`: who the token says you are, what you use, and erasing all of it. */
import type { IRouter } from 'express';
import { FILE_OVERHEAD_BYTES } from '../../storage/session-store';

export function meRoutes(router: IRouter): void {
  router.get('/me', async (req, res) => {
    const { limits } = req.store;
    res.json({
      userId: req.store.userId,
      usage: await req.store.usage(),
      limits: {
        sessions: limits.sessionsPerUser,
        bytes: limits.userQuotaBytes,
        stateBytes: limits.stateBytes,
        messageBytes: limits.messageBytes,
        uploadBytes: limits.uploadBytes,
        filesPerUpload: limits.filesPerUpload,
        filesPerSession: limits.filesPerSession,
        fileOverheadBytes: FILE_OVERHEAD_BYTES,
        uploadTypes: limits.uploadTypes,
      },
    });
  });

  router.delete('/me', async (req, res) => {
    await req.store.eraseAll();
    res.status(204).end();
  });
}
