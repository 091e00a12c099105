/** Baseline: bare Express 5 sending one file with `res.sendFile`, no checks, no headers of ours. */
import express from 'express';
import { listen } from './listen';

const file = process.env.BENCH_FILE;
if (!file) throw new Error('BENCH_FILE is required');

const app = express();
app.get('/', (_req, res) => {
  res.sendFile(file);
});
listen(app);
