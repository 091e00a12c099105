/**
 * Found by tests/property/multipart.test.ts: a part without a file name (a text field, which
 * is refused) followed by a file part, in a body whose closing boundary is missing, was never
 * answered; its staged temporary stayed in `.staging` after the client gave up.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { multipart } from '../helpers/multipart';
import { startPropertyApp, type PropertyApp } from '../property/support';

let p: PropertyApp;
beforeAll(async () => {
  p = await startPropertyApp();
});
afterAll(() => p.close());

it('a refused field, then a file part, then no closing boundary: a 400 at once, nothing staged', async () => {
  const alice = p.auth('alice');
  const created = await p.send({ method: 'POST', path: '/api/v1/sessions', headers: { ...alice, 'Content-Type': 'application/json' }, body: '{}' });
  const session = (created.json as { id: string }).id;
  const body = multipart([{ data: 'a text field' }, { filename: 'x.txt', contentType: 'text/plain', data: 'hello' }], { truncate: true });
  const res = await p.send({ method: 'POST', path: `/api/v1/sessions/${session}/files`, headers: { ...alice, 'Content-Type': body.contentType }, body: body.body });
  expect(res.status).toBe(400);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(await readdir(path.join(p.t.dataDir, '.staging'))).toEqual([]);
  const files = await p.send({ method: 'GET', path: `/api/v1/sessions/${session}/files`, headers: alice });
  expect((files.json as { items: unknown[] }).items).toEqual([]);
});
