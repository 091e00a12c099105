/**
 * Baseline: a bare node:http server piping bytes to and from the same S3 the service uses,
 * with the same SDK the service's blob store uses and nothing else: no authentication, no
 * multipart parsing, no content check, no checksum, no metadata.
 *
 *   PUT /objects            the request body to a fresh key under bench/ (lib-storage Upload,
 *                           the part size and parts in flight of the service's blob store);
 *                           201 {"key"}
 *   GET /objects/<key>      GetObject piped to the response, with its length
 *
 * BENCH_S3_ENDPOINT and BENCH_S3_BUCKET are required (s3rver: its own credentials, path style).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { QUEUE_SIZE } from '../../../src/storage/s3/s3-blob-store';
import { listen } from './listen';

const endpoint = process.env.BENCH_S3_ENDPOINT;
const bucket = process.env.BENCH_S3_BUCKET;
if (!endpoint || !bucket) throw new Error('BENCH_S3_ENDPOINT and BENCH_S3_BUCKET are required');
/** The service's default S3_PART_SIZE. */
const PART_SIZE = 8 * 1024 * 1024;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  // As the service's store: s3rver mis-stores aws-chunked (checksummed streaming) uploads.
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  if (req.method === 'PUT' && req.url === '/objects') {
    const key = `bench/${randomUUID()}`;
    await new Upload({ client, params: { Bucket: bucket, Key: key, Body: req }, partSize: PART_SIZE, queueSize: QUEUE_SIZE }).done();
    res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ key }));
    return;
  }
  if (req.method === 'GET' && req.url?.startsWith('/objects/')) {
    const key = decodeURIComponent(req.url.slice('/objects/'.length));
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!(object.Body instanceof Readable)) throw new Error('no body stream');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(object.ContentLength) });
    await pipeline(object.Body, res);
    return;
  }
  res.writeHead(404).end();
}

listen(
  http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (res.headersSent) res.destroy();
      else res.writeHead(500).end();
    });
  }),
);
