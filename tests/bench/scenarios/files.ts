/**
 * File throughput: one large upload and one large download through the running service,
 * each against the same bytes written and read with plain fs streams (raw disk, no HTTP),
 * and four uploads at once; the service's resident memory is watched throughout.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { streamFilePart } from '../../helpers/multipart';
import { onServerCores } from '../cpu-placement';
import { median } from '../load';
import type { BenchOptions } from '../options';
import { payloadChunks, payloadSha256 } from '../payload';
import { baselineArgs, ROOT, rssGrowthDuring, start, type Running } from '../processes';
import { ratioOfTurns, type Row } from '../report';
import { bearer, startService, tempDir, type Service } from '../service';

const MiB = 1024 * 1024;
const RSS_LIMIT_MIB = 64;

interface Uploaded {
  id: string;
  size: number;
  sha256: string;
}

/** Streams a one-part upload of `bytes` payload bytes; resolves with the stored file. */
async function upload(service: Service, userId: string, sessionId: string, bytes: number): Promise<Uploaded> {
  const res = await streamFilePart(
    `${service.url}/api/v1/sessions/${sessionId}/files`,
    bearer(userId),
    { filename: 'bench.png', contentType: 'image/png' },
    payloadChunks(bytes),
    bytes,
  );
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as { items: Uploaded[] }).items[0]!;
}

/** Downloads a stored file, counting its bytes and nothing more; returns how many arrived. */
function download(service: Service, userId: string, sessionId: string, fileId: string): Promise<number> {
  return fetchBytes(`${service.url}/api/v1/sessions/${sessionId}/files/${fileId}`, bearer(userId));
}

function fetchBytes(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`download: ${res.statusCode}`));
        let received = 0;
        res.on('data', (chunk: Buffer) => (received += chunk.length));
        res.on('end', () => resolve(received));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function seconds<T>(work: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const started = performance.now();
  const result = await work();
  return { result, seconds: (performance.now() - started) / 1000 };
}

/** Writes and reads `mib` MiB with fs streams in a process of its own. */
async function rawDisk(dir: string, mib: number): Promise<{ writeSeconds: number; readSeconds: number }> {
  const child = spawn(...onServerCores(process.execPath, [...baselineArgs('raw-disk'), path.join(dir, 'raw.bin'), String(mib)]), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`raw-disk exited with ${code}`);
  return JSON.parse(out) as { writeSeconds: number; readSeconds: number };
}

export async function fileScenarios(options: BenchOptions): Promise<Row[]> {
  const rows: Row[] = [];
  const dataDir = await tempDir('files');
  const rawDir = await tempDir('raw');
  const service = await startService(dataDir);
  let bareFiles: Running | undefined;
  try {
    const user = 'uploader';
    const bytes = options.uploadMiB * MiB;
    const expected = payloadSha256(bytes);
    const { id: sessionId } = await service.call<{ id: string }>(user, 'POST', '/api/v1/sessions', { title: 'files' });

    // Warm-up, and the proof that what is stored and served is what was sent.
    const first = await upload(service, user, sessionId, bytes);
    if (first.sha256 !== expected || first.size !== bytes) throw new Error('the uploaded file does not match what was sent');
    if ((await download(service, user, sessionId, first.id)) !== bytes) throw new Error('the download is not the whole file');
    await service.call(user, 'DELETE', `/api/v1/sessions/${sessionId}/files/${first.id}`);

    // The same bytes sent by bare Express, to tell what HTTP over loopback costs by itself.
    const servedFile = path.join(rawDir, 'served.bin');
    await pipeline(payloadChunks(bytes), createWriteStream(servedFile, { flush: true }));
    bareFiles = await start({ args: baselineArgs('file-download'), env: { BENCH_FILE: servedFile } });
    const bareDownloads: number[] = [];

    const uploads: number[] = [];
    const downloads: number[] = [];
    const rawWrites: number[] = [];
    const rawReads: number[] = [];
    const growths: number[] = [];
    // Each run measures the service and its baselines back to back; a row's ratio is the median of its runs' ratios.
    const uploadTurns: number[] = [];
    const downloadTurns: number[] = [];
    const baselines = async () => {
      const raw = await rawDisk(rawDir, options.uploadMiB);
      rawWrites.push(options.uploadMiB / raw.writeSeconds);
      rawReads.push(options.uploadMiB / raw.readSeconds);
      const bare = await seconds(() => fetchBytes(bareFiles!.url, {}));
      if (bare.result !== bytes) throw new Error('the bare file server sent a different length');
      bareDownloads.push(options.uploadMiB / bare.seconds);
    };
    for (let run = 0; run < options.fileRuns; run++) {
      // Baselines before the service in even turns, after it in odd ones: neither side always
      // inherits what the other left behind (dirty pages, a collecting heap).
      if (run % 2 === 0) await baselines();
      const measured = await rssGrowthDuring(service.pid, async () => {
        const up = await seconds(() => upload(service, user, sessionId, bytes));
        const down = await seconds(() => download(service, user, sessionId, up.result.id));
        if (up.result.sha256 !== expected || down.result !== bytes) throw new Error('a file came back different');
        await service.call(user, 'DELETE', `/api/v1/sessions/${sessionId}/files/${up.result.id}`);
        return { up: up.seconds, down: down.seconds };
      });
      if (run % 2 === 1) await baselines();
      uploads.push(options.uploadMiB / measured.result.up);
      downloads.push(options.uploadMiB / measured.result.down);
      growths.push(measured.growthBytes / MiB);
      uploadTurns.push(uploads.at(-1)! / rawWrites.at(-1)!);
      downloadTurns.push(downloads.at(-1)! / bareDownloads.at(-1)!);
    }
    const growth = Math.max(...growths);
    const uploadRatio = ratioOfTurns(uploadTurns);
    rows.push({
      scenario: `upload one ${options.uploadMiB} MB file`,
      unit: 'MB/s',
      value: median(uploads),
      baseline: { name: 'raw disk write', value: median(rawWrites) },
      ...uploadRatio,
      extra: `RSS growth ${growth.toFixed(1)} MB`,
      target: `>= 60% of raw disk write; RSS growth <= ${RSS_LIMIT_MIB} MB`,
      met: uploadRatio.ratio >= 0.6 && growth <= RSS_LIMIT_MIB,
    });
    // Against what HTTP over loopback allows at all: bare Express sending the same bytes from
    // disk. The raw disk read, which no HTTP path reaches here, is shown beside it.
    const downloadRatio = ratioOfTurns(downloadTurns);
    rows.push({
      scenario: `download ${options.uploadMiB} MB`,
      unit: 'MB/s',
      value: median(downloads),
      baseline: { name: 'bare Express sendFile of the same bytes', value: median(bareDownloads) },
      ...downloadRatio,
      extra: `${((median(downloads) / median(rawReads)) * 100).toFixed(0)}% of raw disk read (${median(rawReads).toFixed(0)} MB/s)`,
      target: '>= 100% of bare Express sendFile',
      met: downloadRatio.ratio >= 1,
    });

    // Four uploads at once, each into a session of its own.
    const each = options.concurrentUploadMiB * MiB;
    const eachSha = payloadSha256(each);
    const sessions = await Promise.all(
      [1, 2, 3, 4].map((i) => service.call<{ id: string }>(user, 'POST', '/api/v1/sessions', { title: `parallel ${i}` })),
    );
    const together = await rssGrowthDuring(service.pid, () =>
      seconds(() => Promise.all(sessions.map((s) => upload(service, user, s.id, each)))),
    );
    const correct = together.result.result.filter((f) => f.sha256 === eachSha && f.size === each).length;
    const togetherGrowth = together.growthBytes / MiB;
    rows.push({
      scenario: `4 concurrent ${options.concurrentUploadMiB} MB uploads`,
      unit: 'MB/s',
      value: (4 * options.concurrentUploadMiB) / together.result.seconds,
      extra: `RSS growth ${togetherGrowth.toFixed(1)} MB; ${correct}/4 sha256 correct`,
      judged: togetherGrowth / RSS_LIMIT_MIB,
      target: `RSS growth <= ${RSS_LIMIT_MIB} MB, all four sha256 correct`,
      met: togetherGrowth <= RSS_LIMIT_MIB && correct === 4,
    });
  } finally {
    await bareFiles?.stop();
    await service.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
    await fs.rm(rawDir, { recursive: true, force: true });
  }
  return rows;
}
