/** `/sessions/:sessionId/files`: uploads, listing, downloads, deletion via `req.store`. */
import type { Socket } from 'node:net';
import type { IRouter, Request, Response } from 'express';
import { AppError, ClientClosedRequest, RangeNotSatisfiable } from '../../errors';
import { securityEvent, type Logger } from '../../logger';
import type { MetricsRecorder } from '../../metrics/recorder';
import { contentDisposition, fileEtag, parseRange, sendBody, servedContentType } from '../download';
import { receiveFiles } from '../multipart';
import { listFilesQuery } from '../schemas';
import { TransferSlots } from '../transfer-slots';
import { parseInput } from '../validate';
import { API_BASE } from '../api-base';

export interface TransferLimits {
  concurrentDownloads: number;
  concurrentUploads: number;
  /** A transfer with no bytes moving for this long is ended and its descriptor released. */
  downloadIdleTimeoutMs: number;
  uploadIdleTimeoutMs: number;
  /** What the connection's idle timeout goes back to once the transfer is over. */
  idleTimeoutMs: number;
}

/** After a refused upload the rest of the body is discarded and the connection closed. */
function discardBody(req: Request, res: Response): void {
  res.set('Connection', 'close');
  req.unpipe();
  req.resume();
}

/**
 * Gives this request's connection its own idle timeout for the transfer: a client that stops
 * reading a download (or sending an upload) is cut off then, which destroys the stream and
 * closes the file. The connection's usual timeout is back once the response is done.
 */
function idleTimeoutFor(req: Request, res: Response, ms: number, afterwards: number): void {
  req.socket.setTimeout(ms);
  res.once('finish', () => req.socket.setTimeout(afterwards));
}

export function fileRoutes(router: IRouter, logger: Logger, metrics: MetricsRecorder | undefined, limits: TransferLimits): void {
  const downloads = new TransferSlots('downloads', limits.concurrentDownloads, 'MAX_CONCURRENT_DOWNLOADS');
  const uploads = new TransferSlots('uploads', limits.concurrentUploads, 'MAX_CONCURRENT_UPLOADS');

  // Multipart, not JSON: these routes read their bodies themselves.
  router.post(`${API_BASE}/sessions/:sessionId/files`, async (req, res) => {
    uploads.take(req.store.userId, res);
    const upload = await req.store.beginUpload(req.params.sessionId);
    idleTimeoutFor(req, res, limits.uploadIdleTimeoutMs, limits.idleTimeoutMs);
    // Idle means the client's silence: not the server storing a body it has all of, nor the
    // server having stopped reading (waiting on storage). Cut then, a client would see a failure
    // for an upload that is stored.
    res.on('timeout', (socket: Socket) => {
      if (req.complete || req.isPaused()) socket.setTimeout(limits.uploadIdleTimeoutMs);
      else socket.destroy();
    });
    try {
      await receiveFiles(req, upload, { fileBytes: req.store.limits.uploadBytes, files: req.store.limits.filesPerUpload });
    } catch (error) {
      discardBody(req, res);
      await upload.abort();
      if (error instanceof AppError && !(error instanceof ClientClosedRequest)) {
        securityEvent(logger, 'upload refused', { requestId: req.requestId, userId: req.userId, status: error.status, reason: error.detail });
      }
      throw error;
    }
    const items = await upload.commit();
    metrics?.transferred('upload', items.reduce((sum, file) => sum + file.size, 0));
    res.status(201).json({ items });
  });

  router.get(`${API_BASE}/sessions/:sessionId/files`, async (req, res) => {
    const query = parseInput(listFilesQuery, req.query, 'query');
    res.json(await req.store.listFiles(req.params.sessionId, { cursor: query.cursor, limit: query.limit }));
  });

  router.get(`${API_BASE}/sessions/:sessionId/files/:fileId`, async (req, res) => {
    downloads.take(req.store.userId, res);
    const file = await req.store.openFile(req.params.sessionId, req.params.fileId);
    const etag = fileEtag(file.record);
    // Set directly: Express would add a charset the stored bytes may not be in.
    res.setHeader('Content-Type', servedContentType(file.record.contentType));
    res.set({
      'Content-Disposition': contentDisposition(file.record.name),
      'Content-Security-Policy': "default-src 'none'; sandbox",
      'X-Content-Type-Options': 'nosniff',
      'Accept-Ranges': 'bytes',
      ETag: etag,
    });
    const ifRange = req.get('If-Range');
    const range = ifRange !== undefined && ifRange !== etag ? { kind: 'full' as const } : parseRange(req.get('Range'), file.size);
    // `req.fresh` compares If-None-Match (lists, `*`, weak tags) with the ETag just set.
    if (req.fresh) {
      await file.close();
      res.status(304).end();
      return;
    }
    if (range.kind === 'unsatisfiable') {
      await file.close();
      throw new RangeNotSatisfiable(file.size);
    }
    if (range.kind === 'partial') {
      res.status(206).set({
        'Content-Range': `bytes ${range.start}-${range.end}/${file.size}`,
        'Content-Length': String(range.end - range.start + 1),
      });
    } else {
      res.set('Content-Length', String(file.size));
    }
    // HEAD answers exactly what GET would, headers and status, without the bytes.
    if (req.method === 'HEAD') {
      await file.close();
      res.end();
      return;
    }
    idleTimeoutFor(req, res, limits.downloadIdleTimeoutMs, limits.idleTimeoutMs);
    await sendBody(res, range.kind === 'partial' ? file.stream(range) : file.stream());
    if (res.writableFinished) metrics?.transferred('download', range.kind === 'partial' ? range.end - range.start + 1 : file.size);
  });

  router.delete(`${API_BASE}/sessions/:sessionId/files/:fileId`, async (req, res) => {
    await req.store.deleteFile(req.params.sessionId, req.params.fileId);
    res.status(204).end();
  });
}
