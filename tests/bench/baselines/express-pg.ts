/**
 * Baseline: Express 5 and pg doing the least a correct request on the service's schema must
 * do, as the same app role under the same forced row-level security: one transaction per
 * request that first sets app.user_id (the service's own `Database.asUser`: BEGIN,
 * set_config, the statements, COMMIT, on a pool of the same size), then the one statement or
 * two the route needs. No authentication (the user is named in the path), no limits, no
 * quota, no request log.
 *
 *   GET   /:user/sessions/:id            the row, as the session's JSON, with its ETag
 *   PATCH /:user/sessions/:id            If-Match "v<n>": UPDATE ... WHERE version = n, 412 if no row
 *   POST  /:user/sessions/:id/messages   next_seq + 1 on the session row, then INSERT the message
 *
 *   GET   /plain/:user/sessions/:id      the same SELECT as a plain pool.query: no transaction, no
 *                                       set_config (without app.user_id the policy hides every row, so
 *                                       this side connects as BENCH_PLAIN_DATABASE_URL, a role the policy
 *                                       does not apply to, on a pool of the same size): what the RLS
 *                                       transaction shape costs by itself
 *
 * and the same three under /backend calling the service's own `PgBackend` (readSession,
 * updateSession, appendMessage: its statements, its usage row, its transactions) with no HTTP
 * layer of the service's around it, which tells what the service's storage costs from what its
 * middleware costs.
 *
 * BENCH_DATABASE_URL (the app role's URL) and BENCH_POOL_MAX are required.
 */
import { randomUUID } from 'node:crypto';
import express, { type Response } from 'express';
import type { SessionDocument } from '../../../src/sessions/ports';
import { etagOf } from '../../../src/sessions/session-store';
import { Database } from '../../../src/storage/postgres/database';
import { PgBackend } from '../../../src/storage/postgres/pg-backend';
import { listen } from './listen';

const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error('BENCH_DATABASE_URL is required');
const db = new Database({ url, poolMax: Number(process.env.BENCH_POOL_MAX ?? 10), statementTimeoutMs: 5000 });

interface Row {
  id: string;
  title: string;
  state: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}
const COLUMNS = 'id, title, state, version, created_at, updated_at';

function sendSession(res: Response, row: Row): void {
  res.set('ETag', `"v${row.version}"`).json({
    id: row.id,
    title: row.title,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    version: row.version,
    state: JSON.parse(row.state) as unknown,
  });
}

const plainUrl = process.env.BENCH_PLAIN_DATABASE_URL;
if (!plainUrl) throw new Error('BENCH_PLAIN_DATABASE_URL is required');
const plain = new Database({ url: plainUrl, poolMax: Number(process.env.BENCH_POOL_MAX ?? 10), statementTimeoutMs: 5000 });

const app = express();
app.use(express.json());

app.get('/:user/sessions/:id', async (req, res) => {
  const { user, id } = req.params;
  const row = await db.asUser(user, async (sql) => {
    const { rows } = await sql.query<Row>(`SELECT ${COLUMNS} FROM sessions WHERE user_id = $1 AND id = $2`, [user, id]);
    return rows[0];
  });
  if (!row) res.status(404).end();
  else sendSession(res, row);
});

app.get('/plain/:user/sessions/:id', async (req, res) => {
  const { user, id } = req.params;
  const { rows } = await plain.pool.query<Row>(`SELECT ${COLUMNS} FROM sessions WHERE user_id = $1 AND id = $2`, [user, id]);
  if (!rows[0]) res.status(404).end();
  else sendSession(res, rows[0]);
});

app.patch('/:user/sessions/:id', async (req, res) => {
  const { user, id } = req.params;
  const version = /^"v(\d+)"$/.exec(req.get('If-Match') ?? '')?.[1];
  if (version === undefined) {
    res.status(428).end();
    return;
  }
  const body = req.body as { state: unknown };
  const row = await db.asUser(user, async (sql) => {
    const { rows } = await sql.query<Row>(
      `UPDATE sessions SET state = $3, version = version + 1, updated_at = $4
       WHERE user_id = $1 AND id = $2 AND version = $5 RETURNING ${COLUMNS}`,
      [user, id, JSON.stringify(body.state), new Date().toISOString(), Number(version)],
    );
    return rows[0];
  });
  if (!row) res.status(412).end();
  else sendSession(res, row);
});

app.post('/:user/sessions/:id/messages', async (req, res) => {
  const { user, id } = req.params;
  const body = req.body as { role: string; content: string };
  const message = await db.asUser(user, async (sql) => {
    const { rows } = await sql.query<{ seq: number }>(
      'UPDATE sessions SET next_seq = next_seq + 1 WHERE user_id = $1 AND id = $2 RETURNING next_seq - 1 AS seq',
      [user, id],
    );
    if (!rows[0]) return undefined;
    const stored = { id: randomUUID(), seq: rows[0].seq, role: body.role, content: body.content, metadata: {}, createdAt: new Date().toISOString() };
    await sql.query(
      `INSERT INTO messages (user_id, session_id, seq, id, role, content, metadata, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [user, id, stored.seq, stored.id, stored.role, stored.content, JSON.stringify(stored.metadata), stored.createdAt],
    );
    return stored;
  });
  if (!message) res.status(404).end();
  else res.status(201).json(message);
});

const backend = new PgBackend(db, 600);
const admitAll = () => undefined;
class VersionMismatch extends Error {}

app.get('/backend/:user/sessions/:id', async (req, res) => {
  const session = await backend.readSession(req.params.user, req.params.id);
  if (!session) res.status(404).end();
  else res.set('ETag', etagOf(session)).json(session);
});

app.patch('/backend/:user/sessions/:id', async (req, res) => {
  const ifMatch = req.get('If-Match');
  const body = req.body as { state: SessionDocument['state'] };
  try {
    const session = await backend.updateSession(
      req.params.user,
      req.params.id,
      (current) => {
        if (etagOf(current) !== ifMatch) throw new VersionMismatch();
        return { ...current, state: body.state, version: current.version + 1, updatedAt: new Date().toISOString() };
      },
      admitAll,
    );
    if (!session) res.status(404).end();
    else res.set('ETag', etagOf(session)).json(session);
  } catch (error) {
    if (!(error instanceof VersionMismatch)) throw error;
    res.status(412).end();
  }
});

app.post('/backend/:user/sessions/:id/messages', async (req, res) => {
  const body = req.body as { role: string; content: string };
  const createdAt = new Date().toISOString();
  const message = await backend.appendMessage(
    req.params.user,
    req.params.id,
    (seq) => ({ id: randomUUID(), seq, role: body.role, content: body.content, metadata: {}, createdAt }),
    admitAll,
  );
  if (!message) res.status(404).end();
  else res.status(201).json(message);
});

listen(app);
