/**
 * Reads a multipart/form-data upload with busboy, every limit set: file size, file count,
 * parts, fields (none are accepted), header pairs, name and value sizes. Each `file` part is
 * handed, as a stream, to the Upload; the promise settles once every part is stored or the
 * first problem is known. A client that disconnects fails the upload too.
 */
import busboy from 'busboy';
import type { Request } from 'express';
import { BadRequest, ClientClosedRequest, PayloadTooLarge, UnsupportedMediaType } from '../errors';
import type { Upload } from '../sessions/session-store';

export interface MultipartLimits {
  fileBytes: number;
  files: number;
}

const FIELD_NAME = 'file';

export function receiveFiles(req: Request, upload: Upload, limits: MultipartLimits): Promise<void> {
  if (!req.is('multipart/form-data')) {
    return Promise.reject(new UnsupportedMediaType('Send files as multipart/form-data with parts named "file".'));
  }
  return new Promise<void>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        defParamCharset: 'utf8',
        limits: {
          // busboy signals `limit` on reaching the size, so one byte more tells "over" from "exactly".
          fileSize: limits.fileBytes + 1,
          files: limits.files,
          // busboy signals `partsLimit` on reaching the count, so one more tells "over".
          parts: limits.files + 1,
          fields: 0,
          fieldNameSize: 100,
          fieldSize: 1024,
          headerPairs: 16,
        },
      });
    } catch {
      reject(new BadRequest('The multipart body has no usable boundary.'));
      return;
    }

    const stored: Array<Promise<unknown>> = [];
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      req.unpipe(parser);
      parser.destroy();
      reject(error);
    };
    const tooManyFiles = () =>
      fail(new PayloadTooLarge(`At most ${limits.files} files per upload.`, 'MAX_FILES_PER_UPLOAD'));

    parser.on('file', (field, stream, info) => {
      // The part's own pipeline reports its errors; until that pipeline is attached (the
      // staging file is still being opened), an error here must not go unhandled.
      stream.on('error', () => undefined);
      // The request already failed (busboy can still emit a part from the chunk that failed
      // it): its stream will never end, and nothing may wait on it.
      if (settled) {
        stream.resume();
        return;
      }
      if (field !== FIELD_NAME) {
        stream.resume();
        fail(new BadRequest(`Only parts named "${FIELD_NAME}" are accepted.`));
        return;
      }
      stream.on('limit', () => {
        stream.destroy(new PayloadTooLarge(`A file may hold at most ${limits.fileBytes} bytes.`, 'MAX_UPLOAD_BYTES'));
      });
      const part = upload.addFile(stream, { filename: info.filename, mimeType: info.mimeType });
      stored.push(part);
      part.catch((error: unknown) => {
        stream.resume();
        fail(error);
      });
    });
    parser.on('fieldsLimit', () => fail(new BadRequest(`Only file parts named "${FIELD_NAME}" are accepted.`)));
    parser.on('filesLimit', tooManyFiles);
    parser.on('partsLimit', tooManyFiles);
    parser.on('error', () => fail(new BadRequest('The multipart body is malformed or incomplete.')));
    parser.on('close', () => {
      Promise.all(stored).then(() => {
        if (settled) return;
        if (stored.length === 0) {
          fail(new BadRequest(`No part named "${FIELD_NAME}" was sent.`));
          return;
        }
        settled = true;
        resolve();
      }, fail);
    });
    req.on('close', () => {
      if (!req.complete) fail(new ClientClosedRequest());
    });
    req.pipe(parser);
  });
}
