/**
 * JSON bodies: arbitrary JSON values (deep nesting, huge numbers, unicode, wrong types,
 * unknown fields) sent to every route that takes one are answered 2xx or 4xx, never 5xx;
 * what is accepted is stored exactly, what is refused changes nothing.
 */
import fc from 'fast-check';
import { expectClientOrSuccess, runs, startPropertyApp, type PropertyApp, type RawResponse } from './support';

let p: PropertyApp;
let alice: { Authorization: string };
let session: string;

const DEPTH = 16;

beforeAll(async () => {
  // A small depth limit so generated nesting crosses it often; small size limits so they are hit too.
  p = await startPropertyApp({ MAX_JSON_DEPTH: String(DEPTH), MAX_JSON_BYTES: '65536', MAX_STATE_BYTES: '8192', MAX_MESSAGE_BYTES: '4096' });
  alice = p.auth('alice');
  const created = await p.send({ method: 'POST', path: '/api/v1/sessions', headers: { ...alice, 'Content-Type': 'application/json' }, body: '{}' });
  session = (created.json as { id: string }).id;
});
afterAll(() => p.close());

/** Nesting of `depth` arrays or objects around `inner`, as text (deeper than fc builds cheaply). */
const nested = fc
  .tuple(fc.integer({ min: 1, max: 3000 }), fc.constantFrom('[', '{"k":'), fc.constantFrom('1', '"x"', '1e999', '[]', '{}'))
  .map(([depth, open, inner]) => open.repeat(depth) + inner + (open === '[' ? ']' : '}').repeat(depth));

/** Numbers as JSON text, including ones that overflow to Infinity or underflow to 0. */
const numberText = fc.oneof(
  fc.double().filter(Number.isFinite).map((n) => JSON.stringify(n)),
  fc.constantFrom('1e999', '-1e999', '1E400', '1e-400', '-0', '0.0000000000000000000001', '123456789012345678901234567890', '1.7976931348623157e308', '5e-324'),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
);

/** A JSON value as text: fast-check's JSON values, plus our nesting and number texts spliced in. */
const valueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 50 }).map((s) => JSON.stringify(s)) },
  { weight: 2, arbitrary: numberText },
  { weight: 1, arbitrary: nested },
  { weight: 1, arbitrary: fc.array(numberText, { maxLength: 5 }).map((xs) => `{"n":[${xs.join(',')}]}`) },
);

/** A body: mostly the route's own fields (some with wrong types), sometimes unknown ones, sometimes not an object. */
function bodyText(fields: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const member = Object.entries(fields).map(([key, arb]) =>
    fc
      .option(fc.oneof({ weight: 6, arbitrary: arb }, { weight: 1, arbitrary: valueText }), { nil: undefined, freq: 8 })
      .map((v) => (v === undefined ? [] : [[key, v]])),
  );
  // An unknown member in about one body in seven.
  const unknown = fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 12 }), valueText) },
  );
  const object = fc.tuple(fc.tuple(...member), unknown).map(([present, extra]) => {
    const pairs = present.flat() as Array<[string, string]>;
    if (extra !== undefined) pairs.push(extra);
    return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
  });
  return fc.oneof({ weight: 6, arbitrary: object }, { weight: 1, arbitrary: valueText });
}

const titleText = fc
  .oneof(fc.string({ unit: 'grapheme', maxLength: 220 }), fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom('ok', '', ' ', 'a\u202eb', 'x'.repeat(201)))
  .map((s) => JSON.stringify(s));
const stateText = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 6 }).map((v) => JSON.stringify(v)),
  nested.map((n) => `{"deep":${n}}`),
  fc.array(numberText, { maxLength: 4 }).map((xs) => `{"nums":[${xs.join(',')}]}`),
  fc.string({ unit: 'binary', maxLength: 9000 }).map((s) => JSON.stringify({ big: s })),
);

const ROUTES = {
  create: bodyText({ title: titleText, state: stateText }),
  patch: bodyText({ title: titleText, state: stateText }),
  message: bodyText({
    role: fc.constantFrom('user', 'assistant', 'system', 'tool', 'admin', '').map((r) => JSON.stringify(r)),
    content: fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => JSON.stringify(s)),
    metadata: stateText,
  }),
};

const json = () => ({ ...alice, 'Content-Type': 'application/json' });
/**
 * A value as text for comparison. A non-finite number gets a text of its own: JSON.stringify
 * alone would print it as `null` and hide exactly the loss this test is about.
 */
const canonical = (value: unknown) =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `<non-finite ${v}>` : v));

function expectOnly(res: RawResponse, allowed: number[], what: string): void {
  expectClientOrSuccess(res, what);
  if (!allowed.includes(res.status)) throw new Error(`${what} -> ${res.status} ${res.text.slice(0, 300)} (expected one of ${allowed.join(', ')})`);
}

describe('JSON bodies', () => {
  it('POST /sessions: 201 and stored exactly, or a 400/413 that creates nothing', async () => {
    await fc.assert(
      fc.asyncProperty(ROUTES.create, async (text) => {
        const before = ((await p.send({ method: 'GET', path: '/api/v1/me', headers: alice })).json as { usage: { sessions: number } }).usage.sessions;
        const res = await p.send({ method: 'POST', path: '/api/v1/sessions', headers: json(), body: text });
        expectOnly(res, [201, 400, 413], `POST /sessions ${text.slice(0, 200)}`);
        const after = ((await p.send({ method: 'GET', path: '/api/v1/me', headers: alice })).json as { usage: { sessions: number } }).usage.sessions;
        if (res.status !== 201) {
          expect(after).toBe(before);
          return;
        }
        expect(after).toBe(before + 1);
        const sent = JSON.parse(text) as { title?: string; state?: unknown };
        const created = res.json as { id: string; state: unknown; title: string; version: number };
        const read = (await p.send({ method: 'GET', path: `/api/v1/sessions/${created.id}`, headers: alice })).json as { state: unknown; title: string };
        expect(canonical(read.state)).toBe(canonical(sent.state ?? {}));
        expect(read.title).toBe(sent.title === undefined ? 'Untitled' : sent.title.trim());
        expect(created.version).toBe(1);
        await p.send({ method: 'DELETE', path: `/api/v1/sessions/${created.id}`, headers: alice });
      }),
      runs(150),
    );
  });

  it('PATCH /sessions/:id: 200 and stored exactly with version + 1, or a 400/413 that changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(ROUTES.patch, async (text) => {
        const before = (await p.send({ method: 'GET', path: `/api/v1/sessions/${session}`, headers: alice })).json as { version: number; state: unknown; title: string };
        const res = await p.send({ method: 'PATCH', path: `/api/v1/sessions/${session}`, headers: json(), body: text });
        expectOnly(res, [200, 400, 413], `PATCH ${text.slice(0, 200)}`);
        const after = (await p.send({ method: 'GET', path: `/api/v1/sessions/${session}`, headers: alice })).json as { version: number; state: unknown; title: string };
        if (res.status !== 200) {
          expect(after).toEqual(before);
          return;
        }
        const sent = JSON.parse(text) as { title?: string; state?: unknown };
        expect(after.version).toBe(before.version + 1);
        expect(canonical(after.state)).toBe(canonical(sent.state ?? before.state));
        expect(after.title).toBe(sent.title === undefined ? before.title : sent.title.trim());
      }),
      runs(150),
    );
  });

  it('POST /sessions/:id/messages: 201 with the next seq and stored exactly, or a 400/413 that appends nothing', async () => {
    let seq = 0;
    await fc.assert(
      fc.asyncProperty(ROUTES.message, async (text) => {
        const res = await p.send({ method: 'POST', path: `/api/v1/sessions/${session}/messages`, headers: json(), body: text });
        expectOnly(res, [201, 400, 413], `POST message ${text.slice(0, 200)}`);
        const page = (await p.send({ method: 'GET', path: `/api/v1/sessions/${session}/messages?after=${Math.max(0, seq - 1)}&limit=200`, headers: alice })).json as {
          items: Array<{ seq: number; content: string; role: string; metadata: unknown }>;
        };
        if (res.status !== 201) {
          expect(page.items.map((m) => m.seq)).toEqual(seq === 0 ? [] : [seq]);
          return;
        }
        seq += 1;
        const sent = JSON.parse(text) as { role: string; content: string; metadata?: unknown };
        expect((res.json as { seq: number }).seq).toBe(seq);
        const stored = page.items.at(-1)!;
        expect(stored.seq).toBe(seq);
        expect(stored.content).toBe(sent.content);
        expect(stored.role).toBe(sent.role);
        expect(canonical(stored.metadata)).toBe(canonical(sent.metadata ?? {}));
      }),
      runs(150),
    );
  });
});
