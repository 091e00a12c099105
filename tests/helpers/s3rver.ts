/**
 * An S3 endpoint for tests: s3rver in-process on a free port over a temp directory of its
 * own, started and stopped by the test file that uses it (no shared state between files).
 *
 * s3rver 3.7 lacks two calls the blob store's "a failed put leaves nothing" rests on:
 * AbortMultipartUpload (it answers 405) and ListMultipartUploads (501). This helper answers
 * those two itself, as S3 does, from s3rver's own upload directory, so tests see the real
 * API; everything else is s3rver's. It can also fail chosen requests with a 500 to stand in
 * for a store in trouble, or leave them unanswered to stand in for a hung one, and it logs
 * the requests it saw. Never part of the service.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import type { S3Settings } from '../../src/storage/s3/s3-blob-store';
import { makeTempDir } from './temp-dir';

/** s3rver accepts signatures made with exactly these. */
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const REGION = 'us-east-1';
/** Where s3rver's filesystem store keeps a bucket's multipart uploads, one directory each. */
const UPLOADS_DIR = '._S3rver_uploads';

export interface SeenRequest {
  method: string;
  url: URL;
}

export interface S3rverHandle {
  endpoint: string;
  /** Settings for a store on `bucket` here, with the smallest part size S3 allows. */
  settings(bucket: string): S3Settings;
  /** What `bucket` still holds: `object <key>` and `upload <key>` lines, sorted. */
  contents(bucket: string): Promise<string[]>;
  /** Answers requests that `match` with a 500 InternalError until the returned function is called. */
  failRequests(match: (request: SeenRequest) => boolean): () => void;
  /**
   * Reads requests that `match` to their end and never answers them, until the returned
   * function is called, which resets the connections of those still waiting.
   */
  hangRequests(match: (request: SeenRequest) => boolean): () => void;
  /** Every request so far, in order of arrival. */
  readonly requests: SeenRequest[];
  stop(): Promise<void>;
}

export async function startS3rver(): Promise<S3rverHandle> {
  const directory = await makeTempDir('session-vault-s3rver-');
  const s3rver = new S3rver({ directory, silent: true, vhostBuckets: false });
  const s3rverListener = s3rver.callback();
  const requests: SeenRequest[] = [];
  const faults = new Set<(request: SeenRequest) => boolean>();
  const hangs = new Map<(request: SeenRequest) => boolean, Set<http.ServerResponse>>();
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const seen: SeenRequest = { method: req.method ?? 'GET', url: new URL(req.url ?? '/', 'http://s3rver') };
    requests.push(seen);
    for (const match of faults) {
      if (match(seen)) {
        // Read the body first, as S3 does: an answer mid-upload would look like a cut connection.
        req.resume().once('end', () => sendXml(res, 500, errorXml('InternalError', 'We encountered an internal error. Please try again.')));
        return;
      }
    }
    for (const [match, hung] of hangs) {
      if (match(seen)) {
        hung.add(res);
        res.once('close', () => hung.delete(res));
        req.resume();
        return;
      }
    }
    handleMultipartGaps(directory, seen, res).then(
      (handled) => {
        if (!handled) s3rverListener(req, res);
      },
      (error: unknown) => {
        res.destroy(error instanceof Error ? error : undefined);
      },
    );
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;

  let lister: S3Client | undefined;
  const listClient = (): S3Client => {
    // The SDK's Node 20 warning says nothing a test can act on (see S3BlobStore).
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    lister ??= new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: CREDENTIALS });
    return lister;
  };

  return {
    endpoint,
    requests,
    settings: (bucket) => ({
      endpoint,
      region: REGION,
      bucket,
      ...CREDENTIALS,
      forcePathStyle: true,
      partSize: 5 * 1024 * 1024,
    }),
    async contents(bucket) {
      const client = listClient();
      const objects = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return [
        ...(objects.Contents ?? []).map((o) => `object ${o.Key}`),
        ...(uploads.Uploads ?? []).map((u) => `upload ${u.Key}`),
      ].sort();
    },
    failRequests(match) {
      faults.add(match);
      return () => faults.delete(match);
    },
    hangRequests(match) {
      const hung = new Set<http.ServerResponse>();
      hangs.set(match, hung);
      return () => {
        hangs.delete(match);
        for (const res of [...hung]) res.destroy();
      };
    },
    async stop() {
      lister?.destroy();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** AbortMultipartUpload and ListMultipartUploads, which s3rver lacks; false for anything else. */
async function handleMultipartGaps(directory: string, request: SeenRequest, res: http.ServerResponse): Promise<boolean> {
  const [bucket = '', ...keyParts] = request.url.pathname.slice(1).split('/');
  const key = keyParts.map(decodeURIComponent).join('/');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) return false;
  const uploadsDir = path.join(directory, bucket, UPLOADS_DIR);

  const uploadId = request.url.searchParams.get('uploadId');
  if (request.method === 'DELETE' && key !== '' && uploadId !== null) {
    // s3rver names uploads with hex ids; anything else is no upload of ours (and no path).
    const uploadDir = /^[0-9a-f]+$/.test(uploadId) ? path.join(uploadsDir, uploadId) : undefined;
    if (uploadDir === undefined || (await readFile(path.join(uploadDir, 'key'), 'utf8').catch(() => undefined)) !== key) {
      sendXml(res, 404, errorXml('NoSuchUpload', 'The specified upload does not exist.'));
      return true;
    }
    await rm(uploadDir, { recursive: true, force: true });
    res.writeHead(204).end();
    return true;
  }

  if (request.method === 'GET' && key === '' && request.url.searchParams.has('uploads')) {
    const prefix = request.url.searchParams.get('prefix') ?? '';
    const ids = await readdir(uploadsDir).catch(() => [] as string[]);
    const uploads: string[] = [];
    for (const id of ids.sort()) {
      const uploadKey = await readFile(path.join(uploadsDir, id, 'key'), 'utf8').catch(() => undefined);
      if (uploadKey === undefined || !uploadKey.startsWith(prefix)) continue;
      const initiated = (await stat(path.join(uploadsDir, id))).birthtime.toISOString();
      uploads.push(
        `<Upload><Key>${escapeXml(uploadKey)}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated>` +
          '<StorageClass>STANDARD</StorageClass></Upload>',
      );
    }
    sendXml(
      res,
      200,
      '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        `<Bucket>${bucket}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>` +
        `<Prefix>${escapeXml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
        `${uploads.join('')}</ListMultipartUploadsResult>`,
    );
    return true;
  }
  return false;
}

function sendXml(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
}

function errorXml(code: string, message: string): string {
  return `<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>`;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
