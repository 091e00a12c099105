/**
 * Found by tests/property/multipart.test.ts: a part without a file name (a text field, which
 * is refused) followed by a file part, in a body whose closing boundary is missing, was never
 * answered; its staged temporary stayed behind after the client gave up (the fs backend's
 * side of it: tests/storage/fs/files-on-disk.test.ts).
 */
import { multipart } from '../helpers/multipart';
import { forEachBackend } from '../helpers/test-app';
import { startPropertyApp, type PropertyApp } from '../property/support';

forEachBackend((backend) => {
  let p: PropertyApp;
  beforeAll(async () => {
    p = await startPropertyApp({}, backend);
  });
  afterAll(() => p.close());

  it('a refused field, then a file part, then no closing boundary: a 400 at once, nothing stored', async () => {
    const alice = p.auth('alice');
    const created = await p.send({ method: 'POST', path: '/api/v1/sessions', headers: { ...alice, 'Content-Type': 'application/json' }, body: '{}' });
    const session = (created.json as { id: string }).id;
    const usage = async () => ((await p.send({ method: 'GET', path: '/api/v1/me', headers: alice })).json as { usage: unknown }).usage;
    const before = await usage();
    const body = multipart([{ data: 'a text field' }, { filename: 'x.txt', contentType: 'text/plain', data: 'hello' }], { truncate: true });
    const res = await p.send({ method: 'POST', path: `/api/v1/sessions/${session}/files`, headers: { ...alice, 'Content-Type': body.contentType }, body: body.body });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const files = await p.send({ method: 'GET', path: `/api/v1/sessions/${session}/files`, headers: alice });
    expect((files.json as { items: unknown[] }).items).toEqual([]);
    expect(await usage()).toEqual(before);
  });
});
