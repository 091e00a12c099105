/** Baseline: bare Express 5 answering a constant JSON body the size of a benchmarked session. */
import express from 'express';
import { listen } from './listen';

const body = {
  id: '00000000-0000-4000-8000-000000000000',
  title: 'constant',
  createdAt: new Date(0).toISOString(),
  updatedAt: new Date(0).toISOString(),
  version: 1,
  state: { notes: 'x'.repeat(1000) },
};

const app = express();
app.get('/', (_req, res) => {
  res.json(body);
});
listen(app);
