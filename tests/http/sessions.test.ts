import request from 'supertest';
import { bearer, forEachBackend, restartTestApp, startTestApp, type TestApp } from '../helpers/test-app';

let t: TestApp;
let alice: { Authorization: string };

forEachBackend((backend) => {
  beforeEach(async () => {
    t = await startTestApp({}, { backend });
    alice = bearer(t.token('alice'));
  });
  afterEach(() => t.close());

  function expectProblem(res: request.Response, status: number): void {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toEqual(
      expect.objectContaining({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) }),
    );
    expect(res.body.requestId).toBe(res.headers['x-request-id']);
    expect(JSON.stringify(res.body)).not.toMatch(/\/tmp|session-vault-test|at .*\.ts|Error:/);
  }

  async function create(body: object = {}) {
    const res = await request(t.app).post('/api/v1/sessions').set(alice).send(body);
    expect(res.status).toBe(201);
    return res.body as { id: string; version: number; updatedAt: string; title: string };
  }

  describe('sessions', () => {
    it('creates a session with server-chosen id, Location, ETag and no-store', async () => {
      const res = await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'Plan', state: { step: 1 } });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        title: 'Plan',
        createdAt: expect.any(String),
        updatedAt: res.body.createdAt,
        version: 1,
        state: { step: 1 },
      });
      expect(res.headers.location).toBe(`/api/v1/sessions/${res.body.id}`);
      expect(res.headers.etag).toBe('"v1"');
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('creates a session from an empty body with defaults', async () => {
      const res = await request(t.app).post('/api/v1/sessions').set(alice);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ title: 'Untitled', state: {}, version: 1 });
    });

    it('reads a session back with its ETag and answers If-None-Match with 304', async () => {
      const { id } = await create({ title: 'a', state: { x: [1, 2] } });
      const res = await request(t.app).get(`/api/v1/sessions/${id}`).set(alice);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id, title: 'a', state: { x: [1, 2] } });
      expect(res.headers.etag).toBe('"v1"');
      const again = await request(t.app).get(`/api/v1/sessions/${id}`).set(alice).set('If-None-Match', '"v1"');
      expect(again.status).toBe(304);
    });

    it('answers every read with the current document, the same bytes each time, as JSON; HEAD with its headers and no body', async () => {
      const { id } = await create({ title: 'a', state: { text: 'é\u2028"quoted"', n: [1.5, null] } });
      const path = `/api/v1/sessions/${id}`;
      const first = await request(t.app).get(path).set(alice);
      const second = await request(t.app).get(path).set(alice);
      expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(second.text).toBe(first.text);
      expect(first.text).toBe(JSON.stringify(first.body));
      expect(first.body.state).toEqual({ text: 'é\u2028"quoted"', n: [1.5, null] });
      expect(Number(first.headers['content-length'])).toBe(Buffer.byteLength(first.text));
      const head = await request(t.app).head(path).set(alice);
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(first.headers['content-length']);
      expect(head.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(head.text).toBeUndefined();
      // A change is read back at once, never a body kept from before it.
      const patched = await request(t.app).patch(path).set(alice).send({ title: 'b' });
      const after = await request(t.app).get(path).set(alice);
      expect(after.text).toBe(patched.text);
      expect(after.body).toMatchObject({ title: 'b', version: 2 });
      expect(after.headers.etag).toBe('"v2"');
    });

    it('refuses unknown fields and never stores them', async () => {
      const res = await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'a', owner: 'bob' });
      expectProblem(res, 400);
      expect(res.body.detail).toMatch(/owner/);
      const list = await request(t.app).get('/api/v1/sessions').set(alice);
      expect(list.body.items).toEqual([]);
    });

    it.each([
      ['an empty title', { title: '' }],
      ['a title with a newline', { title: 'a\nb' }],
      ['a 201-character title', { title: 'x'.repeat(201) }],
      ['state as an array', { state: [1] }],
      ['state as a string', { state: 'x' }],
    ])('refuses %s with 400', async (_name, body) => {
      expectProblem(await request(t.app).post('/api/v1/sessions').set(alice).send(body), 400);
    });

    it('answers malformed JSON with 400, a foreign media type with 415, an oversize body with 413', async () => {
      expectProblem(
        await request(t.app).post('/api/v1/sessions').set(alice).set('Content-Type', 'application/json').send('{"title":'),
        400,
      );
      expectProblem(await request(t.app).post('/api/v1/sessions').set(alice).set('Content-Type', 'text/plain').send('hi'), 415);
      const huge = { state: { blob: 'x'.repeat(t.config.requestLimits.jsonBytes) } };
      const res = await request(t.app).post('/api/v1/sessions').set(alice).send(huge);
      expectProblem(res, 413);
    });

    it('answers state over MAX_STATE_BYTES with 413 naming the limit', async () => {
      const small = await startTestApp({ MAX_STATE_BYTES: '100' }, { backend });
      try {
        const res = await request(small.app)
          .post('/api/v1/sessions')
          .set(bearer(small.token('alice')))
          .send({ state: { blob: 'x'.repeat(200) } });
        expectProblem(res, 413);
        expect(res.body.limit).toBe('MAX_STATE_BYTES');
      } finally {
        await small.close();
      }
    });

    it('patches title and state, growing version by one and refusing an empty patch', async () => {
      const { id } = await create({ title: 'a' });
      const res = await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).send({ state: { k: 'v' } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ title: 'a', state: { k: 'v' }, version: 2 });
      expect(res.headers.etag).toBe('"v2"');
      expectProblem(await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).send({}), 400);
    });

    it('applies a patch with a matching If-Match and refuses a stale one with 412', async () => {
      const { id } = await create();
      const ok = await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).set('If-Match', '"v1"').send({ title: 'b' });
      expect(ok.status).toBe(200);
      const stale = await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).set('If-Match', '"v1"').send({ title: 'c' });
      expectProblem(stale, 412);
      const weak = await request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).set('If-Match', 'W/"v2"').send({ title: 'c' });
      expectProblem(weak, 412);
      const current = await request(t.app).get(`/api/v1/sessions/${id}`).set(alice);
      expect(current.body).toMatchObject({ title: 'b', version: 2 });
    });

    it('applies concurrent unconditional patches one at a time: version grows by exactly one each', async () => {
      const { id } = await create();
      const results = await Promise.all(
        Array.from({ length: 25 }, (_, i) => request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).send({ state: { i } })),
      );
      expect(results.every((r) => r.status === 200)).toBe(true);
      const versions = results.map((r) => r.body.version as number).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 25 }, (_, i) => i + 2));
      const final = await request(t.app).get(`/api/v1/sessions/${id}`).set(alice);
      expect(final.body.version).toBe(26);
    });

    it('lets exactly one of several concurrent If-Match patches win', async () => {
      const { id } = await create();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          request(t.app).patch(`/api/v1/sessions/${id}`).set(alice).set('If-Match', '"v1"').send({ state: { i } }),
        ),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 412)).toHaveLength(9);
    });

    it('deletes a session and everything in it', async () => {
      const { id } = await create();
      await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'hi' }).expect(201);
      expect((await request(t.app).delete(`/api/v1/sessions/${id}`).set(alice)).status).toBe(204);
      expectProblem(await request(t.app).get(`/api/v1/sessions/${id}`).set(alice), 404);
      expectProblem(await request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice), 404);
      expectProblem(await request(t.app).delete(`/api/v1/sessions/${id}`).set(alice), 404);
      expect((await request(t.app).get('/api/v1/sessions').set(alice)).body.items).toEqual([]);
      expect((await request(t.app).get('/api/v1/me').set(alice)).body.usage).toEqual({ sessions: 0, files: 0, bytes: 0 });
    });

    it('lists newest updatedAt first with cursor pagination that visits every session once', async () => {
      let clock = Date.parse('2026-01-01T00:00:00.000Z');
      const ticking = await startTestApp({}, { backend, now: () => new Date((clock += 1000)) });
      const auth = bearer(ticking.token('alice'));
      try {
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) {
          ids.push((await request(ticking.app).post('/api/v1/sessions').set(auth).send({ title: `s${i}` })).body.id);
        }
        // Touching the oldest makes it the newest.
        await request(ticking.app).patch(`/api/v1/sessions/${ids[0]}`).set(auth).send({ title: 'touched' }).expect(200);
        const expected = [ids[0], ...ids.slice(1).reverse()];
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const res: request.Response = await request(ticking.app)
            .get('/api/v1/sessions')
            .query(cursor ? { limit: 3, cursor } : { limit: 3 })
            .set(auth);
          expect(res.status).toBe(200);
          for (const item of res.body.items) {
            expect(item.state).toBeUndefined();
            seen.push(item.id);
          }
          cursor = res.body.nextCursor;
        } while (cursor);
        expect(seen).toEqual(expected);
      } finally {
        await ticking.close();
      }
    });

    it('refuses a forged cursor and a bad limit with 400', async () => {
      expectProblem(await request(t.app).get('/api/v1/sessions?cursor=garbage').set(alice), 400);
      expectProblem(await request(t.app).get('/api/v1/sessions?limit=0').set(alice), 400);
      expectProblem(await request(t.app).get('/api/v1/sessions?limit=1000').set(alice), 400);
    });

    it('keeps listing correct after the process restarts (the index rebuilt from what is stored)', async () => {
      const a = await create({ title: 'a' });
      const b = await create({ title: 'b' });
      await request(t.app).delete(`/api/v1/sessions/${a.id}`).set(alice).expect(204);
      const restarted = (t = await restartTestApp(t));
      const res = await request(restarted.app).get('/api/v1/sessions').set(alice);
      expect(res.body.items.map((s: { id: string }) => s.id)).toEqual([b.id]);
    });

    it('refuses a session over MAX_SESSIONS_PER_USER with a problem naming the limit', async () => {
      const capped = await startTestApp({ MAX_SESSIONS_PER_USER: '2' }, { backend });
      const auth = bearer(capped.token('alice'));
      try {
        await request(capped.app).post('/api/v1/sessions').set(auth).expect(201);
        await request(capped.app).post('/api/v1/sessions').set(auth).expect(201);
        const res = await request(capped.app).post('/api/v1/sessions').set(auth);
        expectProblem(res, 507);
        expect(res.body.limit).toBe('MAX_SESSIONS_PER_USER');
      } finally {
        await capped.close();
      }
    });

    it('answers unknown routes with a problem, not an HTML page', async () => {
      expectProblem(await request(t.app).get('/api/v1/nothing').set(alice), 404);
      expectProblem(await request(t.app).get('/nothing'), 404);
    });
  });

  describe('hostile bodies', () => {
    let h: TestApp;
    beforeAll(async () => {
      h = await startTestApp({}, { backend });
    });
    afterAll(() => h.close());

    it('refuses __proto__ as a body field, and stores it as plain data inside state', async () => {
      const auth = bearer(h.token('alice'));
      const polluted = await request(h.app)
        .post('/api/v1/sessions')
        .set(auth)
        .set('Content-Type', 'application/json')
        .send('{"title":"a","__proto__":{"admin":true}}');
      expect(polluted.status).toBe(400);
      const inState = await request(h.app)
        .post('/api/v1/sessions')
        .set(auth)
        .set('Content-Type', 'application/json')
        .send('{"state":{"__proto__":{"admin":true}}}');
      expect(inState.status).toBe(201);
      const read = await request(h.app).get(`/api/v1/sessions/${inState.body.id}`).set(auth);
      expect(JSON.parse(read.text).state).toEqual(JSON.parse('{"__proto__":{"admin":true}}'));
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
    });
  });
});
