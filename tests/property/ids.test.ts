/**
 * Ids in paths: any string a client can put in a request target, on every route that takes
 * one, is answered without a 5xx, and never with another user's data.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { filePart, multipart } from '../helpers/multipart';
import { expectClientOrSuccess, runs, startPropertyApp, type PropertyApp, type RawResponse } from './support';

let p: PropertyApp;
let alice: { Authorization: string };
let bob: { Authorization: string };
/** Everything of alice's that must never reach bob: ids and canary content. */
const aliceSecrets: string[] = [];
let aliceSession: string;
let aliceFile: string;
let bobSession: string;
let bobFile: string;
let aliceSnapshot: string;

const ALICE_CANARY = 'alice-canary-7f3e';

async function snapshotOfAlice(): Promise<string> {
  const parts = await Promise.all(
    [
      '/api/v1/me',
      '/api/v1/sessions',
      `/api/v1/sessions/${aliceSession}`,
      `/api/v1/sessions/${aliceSession}/messages`,
      `/api/v1/sessions/${aliceSession}/files`,
      `/api/v1/sessions/${aliceSession}/files/${aliceFile}`,
    ].map((path) => p.send({ method: 'GET', path, headers: alice })),
  );
  return JSON.stringify(parts.map((r) => [r.status, r.text]));
}

beforeAll(async () => {
  p = await startPropertyApp({ MAX_UPLOAD_BYTES: '4096' });
  alice = p.auth('alice');
  bob = p.auth('bob');
  const json = { 'Content-Type': 'application/json' };
  const create = async (who: { Authorization: string }, title: string) =>
    (await p.send({ method: 'POST', path: '/api/v1/sessions', headers: { ...who, ...json }, body: JSON.stringify({ title, state: { canary: title } }) })).json as { id: string };
  const upload = async (who: { Authorization: string }, session: string, content: string) => {
    const body = multipart([filePart(`${content}.txt`, 'text/plain', content)]);
    const res = await p.send({ method: 'POST', path: `/api/v1/sessions/${session}/files`, headers: { ...who, 'Content-Type': body.contentType }, body: body.body });
    return (res.json as { items: Array<{ id: string }> }).items[0]!.id;
  };
  aliceSession = (await create(alice, ALICE_CANARY)).id;
  await p.send({ method: 'POST', path: `/api/v1/sessions/${aliceSession}/messages`, headers: { ...alice, ...json }, body: JSON.stringify({ role: 'user', content: ALICE_CANARY }) });
  aliceFile = await upload(alice, aliceSession, ALICE_CANARY);
  aliceSecrets.push(aliceSession, aliceFile, ALICE_CANARY);
  bobSession = (await create(bob, 'bob-session')).id;
  bobFile = await upload(bob, bobSession, 'bob-file');
  aliceSnapshot = await snapshotOfAlice();
});
afterAll(() => p.close());

/** What a client can compare between two answers: status and problem, not the request id. */
function observable(res: RawResponse): unknown {
  const { requestId: _requestId, ...problem } = (res.json ?? {}) as Record<string, unknown>;
  return { status: res.status, type: res.headers['content-type'], problem };
}

/**
 * The same request with `foreign` ids swapped for ids that never existed must be answered
 * the same way: another user's session or file is indistinguishable from no such thing.
 */
async function expectSameAsNeverExisted(
  route: Route,
  who: { Authorization: string },
  ids: [string, string],
  foreign: string[],
  res: RawResponse,
): Promise<void> {
  const [first, second] = ids.map((id) => (foreign.includes(id) ? randomUUID() : id)) as [string, string];
  if (first === ids[0] && second === ids[1]) return;
  const body = route.body?.();
  const twin = await p.send({
    method: route.method,
    path: route.path(first, second),
    headers: { ...who, ...(body ? { 'Content-Type': body.type } : {}) },
    body: body?.body,
  });
  expect(observable(res)).toEqual(observable(twin));
}

/**
 * A path segment as a client could send it: raw, percent-encoded, or a mutation of one of
 * `real`. Never empty or only slashes: `/sessions/` is the listing route, not an id.
 */
const segment = (real: string[]): fc.Arbitrary<string> =>
  fc
    .oneof(
      // Raw printable ASCII, `%`, `.`, `\`, `;`, `/` included, sent as is. (Raw bytes above
      // 0x7f are not HTTP: node's parser answers them with a bare 400 before the app runs.)
      fc.string({ unit: fc.constantFrom(...".%/\\;:@!$&'()*+,=-_~aAzZ09".split('')), minLength: 1, maxLength: 40 }),
      // Any unicode (NUL and controls too) percent-encoded; a lone surrogate cannot be encoded.
      fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'))),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).map(encodeURIComponent),
      fc.constantFrom('..', '.', '%2e%2e', '%2E%2e', '..%2f..%2fetc%2fpasswd', '..%5c..%5c', '%00', 'a%00b', '%', '%zz', '%E0%A4%A', '%c0%ae%c0%ae', '%252e%252e'),
      fc.integer({ min: 200, max: 5000 }).map((n) => 'a'.repeat(n)),
      fc
        .tuple(
          fc.constantFrom(...real),
          fc.constantFrom<(id: string) => string>(
            (id) => id,
            (id) => id.toUpperCase(),
            (id) => `%20${id}`,
            (id) => `${id}%20`,
            (id) => `${id}%00`,
            (id) => `${id}.`,
            (id) => `./${id}`,
            (id) => `..%2f${id}`,
            (id) => id.slice(0, -1),
            (id) => `${id}0`,
          ),
        )
        .map(([id, mutate]) => mutate(id)),
    )
    .filter((s) => s.replace(/\//g, '') !== '');

type Route = { method: string; path: (a: string, b: string) => string; body?: () => { type: string; body: Buffer | string } };
const jsonBody = (value: unknown) => () => ({ type: 'application/json', body: JSON.stringify(value) });
const uploadBody = () => {
  const m = multipart([filePart('x.txt', 'text/plain', 'from bob')]);
  return { type: m.contentType, body: m.body };
};

const ROUTES: Route[] = [
  { method: 'GET', path: (a) => `/api/v1/sessions/${a}` },
  { method: 'PATCH', path: (a) => `/api/v1/sessions/${a}`, body: jsonBody({ title: 'stolen', state: { by: 'bob' } }) },
  { method: 'DELETE', path: (a) => `/api/v1/sessions/${a}` },
  { method: 'POST', path: (a) => `/api/v1/sessions/${a}/messages`, body: jsonBody({ role: 'user', content: 'injected' }) },
  { method: 'GET', path: (a) => `/api/v1/sessions/${a}/messages?after=0&limit=200` },
  { method: 'POST', path: (a) => `/api/v1/sessions/${a}/files`, body: uploadBody },
  { method: 'GET', path: (a) => `/api/v1/sessions/${a}/files` },
  { method: 'GET', path: (a, b) => `/api/v1/sessions/${a}/files/${b}` },
  { method: 'HEAD', path: (a, b) => `/api/v1/sessions/${a}/files/${b}` },
  { method: 'DELETE', path: (a, b) => `/api/v1/sessions/${a}/files/${b}` },
];

describe('ids in paths', () => {
  it("bob: any id on any route is a 4xx, alice's ids answered as ids that never existed, never a 5xx, never alice's data", async () => {
    const ids = [aliceSession, aliceFile];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), segment(ids), segment(ids), async (route, first, second) => {
        const body = route.body?.();
        const path = route.path(first, second);
        const res = await p.send({
          method: route.method,
          path,
          headers: { ...bob, ...(body ? { 'Content-Type': body.type } : {}) },
          body: body?.body,
        });
        expectClientOrSuccess(res, `${route.method} ${path}`);
        // Bob's own ids are never generated, so nothing here can succeed, and alice's exact
        // ids must look exactly like ids that never existed.
        expect(res.status).toBeGreaterThanOrEqual(400);
        await expectSameAsNeverExisted(route, bob, [first, second], [aliceSession, aliceFile], res);
        for (const secret of aliceSecrets) expect(res.text).not.toContain(secret);
      }),
      runs(300),
    );
    // Nothing bob sent changed anything of alice's, nor of his own.
    expect(await snapshotOfAlice()).toBe(aliceSnapshot);
    const own = await p.send({ method: 'GET', path: `/api/v1/sessions/${bobSession}/files/${bobFile}`, headers: bob });
    expect(own.status).toBe(200);
    expect(own.text).toBe('bob-file');
  });

  it('alice: any id on a read route is answered without a 5xx, and whatever succeeds is hers', async () => {
    const reads = ROUTES.filter((r) => r.method === 'GET' || r.method === 'HEAD');
    const ids = [aliceSession, aliceFile, bobSession, bobFile];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...reads), fc.option(segment(ids), { nil: undefined }), segment(ids), async (route, a, second) => {
        const first = a ?? aliceSession;
        const path = route.path(first, second);
        const res = await p.send({ method: route.method, path, headers: alice });
        expectClientOrSuccess(res, `${route.method} ${path}`);
        for (const id of [bobSession, bobFile, 'bob-file', 'bob-session']) expect(res.text).not.toContain(id);
        if (res.status < 300 && route.method === 'GET' && path.includes('/files/')) expect(res.text).toBe(ALICE_CANARY);
        if (res.status < 300 && /^\/api\/v1\/sessions\/[^/?]+$/.test(path)) expect((res.json as { id: string }).id).toBe(aliceSession);
        // Bob's exact ids, in alice's name, are answered like ids that never existed.
        await expectSameAsNeverExisted(route, alice, [first, second], [bobSession, bobFile], res);
      }),
      runs(200),
    );
    expect(await snapshotOfAlice()).toBe(aliceSnapshot);
  });
});
