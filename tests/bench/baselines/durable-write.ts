/**
 * Baseline: Express 5 doing only a durable replace of a 1 KB JSON document per request:
 * write a temporary file, fsync it, rename it over the target. `PUT /:slot` picks one of
 * BENCH_SLOTS documents, each in a directory of its own (as sessions are), so concurrent
 * clients write separate documents. With BENCH_FSYNC_DIR=1 the directory is fsynced after the
 * rename too, which is what makes the rename itself survive a crash.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, promises as fs } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { benchDirectory, listen } from './listen';

const dir = benchDirectory();
const slots = Number(process.env.BENCH_SLOTS ?? 64);
const fsyncDirectory = process.env.BENCH_FSYNC_DIR === '1';
for (let slot = 0; slot < slots; slot++) mkdirSync(path.join(dir, `doc-${slot}`), { recursive: true });

const app = express();
app.use(express.json());
app.put('/:slot', async (req, res) => {
  const slotDir = path.join(dir, `doc-${Number(req.params.slot) % slots}`);
  const temp = path.join(dir, `${randomUUID()}.tmp`);
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(JSON.stringify(req.body));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, path.join(slotDir, 'doc.json'));
  if (fsyncDirectory) {
    const directory = await fs.open(slotDir, 'r');
    await directory.sync();
    await directory.close();
  }
  res.json({ ok: true });
});
listen(app);
