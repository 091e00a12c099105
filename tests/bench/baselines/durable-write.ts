/**
 * Baseline: Express 5 doing only a durable replace of a 1 KB JSON document per request:
 * write a temporary file, fsync it, rename it over the target. `PUT /:slot` picks one of
 * BENCH_SLOTS targets, so concurrent clients can write separate documents.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { benchDirectory, listen } from './listen';

const dir = benchDirectory();
const slots = Number(process.env.BENCH_SLOTS ?? 64);

const app = express();
app.use(express.json());
app.put('/:slot', async (req, res) => {
  const slot = Number(req.params.slot) % slots;
  const data = JSON.stringify(req.body);
  const temp = path.join(dir, `${randomUUID()}.tmp`);
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, path.join(dir, `doc-${slot}.json`));
  res.json({ ok: true });
});
listen(app);
