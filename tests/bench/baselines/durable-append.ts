/**
 * Baseline: Express 5 doing only an append and an fsync to one file per request, with the
 * file held open for the whole run (the cheapest form of a durable append).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import express from 'express';
import { benchDirectory, listen } from './listen';

const dir = benchDirectory();

async function main(): Promise<void> {
  const log = await fs.open(path.join(dir, 'append.jsonl'), 'a', 0o600);
  const app = express();
  app.use(express.json());
  app.post('/', async (req, res) => {
    await log.write(`${JSON.stringify(req.body)}\n`);
    await log.sync();
    res.status(201).json({ ok: true });
  });
  listen(app);
}

void main();
