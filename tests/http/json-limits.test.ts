/**
 * The shape of a JSON body: nesting bounded by MAX_JSON_DEPTH and checked without recursion
 * before anything else reads the body, and numbers JSON cannot carry back (`1e999`) refused
 * rather than stored as null.
 */
import request from 'supertest';
import { bearer, forEachBackend, startTestApp, type TestApp } from '../helpers/test-app';

let t: TestApp;
let alice: { Authorization: string };

forEachBackend((backend) => {
  beforeAll(async () => {
    t = await startTestApp({}, { backend });
    alice = bearer(t.token('alice'));
  });
  afterAll(() => t.close());

  const nestedObjects = (n: number, inner = '{}') => '{"a":'.repeat(n) + inner + '}'.repeat(n);
  const nestedArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);

  function postJson(path: string, text: string, who = alice) {
    return request(t.app).post(path).set(who).set('Content-Type', 'application/json').send(text);
  }

  function patchJson(path: string, text: string, who = alice) {
    return request(t.app).patch(path).set(who).set('Content-Type', 'application/json').send(text);
  }

  async function newSession(): Promise<string> {
    return (await request(t.app).post('/api/v1/sessions').set(alice).send({ title: 'json' }).expect(201)).body.id as string;
  }

  function expectDepthProblem(res: request.Response, depth = 64) {
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toEqual({
      type: '/problems/bad-request',
      title: 'Bad Request',
      status: 400,
      detail: `The body is nested deeper than ${depth} levels (MAX_JSON_DEPTH).`,
      limit: 'MAX_JSON_DEPTH',
      requestId: res.headers['x-request-id'],
    });
  }

  describe('MAX_JSON_DEPTH', () => {
    it('refuses {"state": + 5,000 nested objects with a 400 naming the limit (was a 500 RangeError)', async () => {
      const before = (await request(t.app).get('/api/v1/me').set(alice).expect(200)).body.usage;
      expectDepthProblem(await postJson('/api/v1/sessions', `{"state":${nestedObjects(5000)}}`));
      expect((await request(t.app).get('/api/v1/me').set(alice).expect(200)).body.usage).toEqual(before);
    });

    it('refuses 20,000 nested arrays in message metadata quickly, and keeps serving', async () => {
      const id = await newSession();
      const started = Date.now();
      const res = await postJson(`/api/v1/sessions/${id}/messages`, `{"role":"user","content":"x","metadata":{"m":${nestedArrays(20_000)}}}`);
      expectDepthProblem(res);
      expect(Date.now() - started).toBeLessThan(2000);
      const list = await request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice).expect(200);
      expect(list.body.items).toEqual([]);
      await request(t.app).post(`/api/v1/sessions/${id}/messages`).set(alice).send({ role: 'user', content: 'still here' }).expect(201);
    });

    it('refuses the deepest nesting the byte limit allows (about 260,000 levels) without a crash or a stall', async () => {
      const id = await newSession();
      const levels = Math.floor((t.config.requestLimits.jsonBytes - 200) / 2);
      const started = Date.now();
      expectDepthProblem(await patchJson(`/api/v1/sessions/${id}`, `{"state":{"x":${nestedArrays(levels)}}}`));
      expect(Date.now() - started).toBeLessThan(3000);
      const session = await request(t.app).get(`/api/v1/sessions/${id}`).set(alice).expect(200);
      expect(session.body).toMatchObject({ version: 1, state: {} });
    });

    it('refuses deep nesting in a PATCH, and under a "__proto__" key', async () => {
      const id = await newSession();
      expectDepthProblem(await patchJson(`/api/v1/sessions/${id}`, `{"state":${nestedObjects(100)}}`));
      expectDepthProblem(await patchJson(`/api/v1/sessions/${id}`, `{"state":{"__proto__":${nestedObjects(100)}}}`));
      expectDepthProblem(await postJson('/api/v1/sessions', `[${nestedArrays(100)}]`));
    });

    it('counts the body as level 1: exactly the limit passes, one more is refused', async () => {
      const small = await startTestApp({ MAX_JSON_DEPTH: '4' }, { backend });
      try {
        const auth = bearer(small.token('alice'));
        // body(1) > state(2) > a(3) > b(4)
        const ok = await request(small.app).post('/api/v1/sessions').set(auth).send({ state: { a: { b: {} } } });
        expect(ok.status).toBe(201);
        expect(ok.body.state).toEqual({ a: { b: {} } });
        const arrays = await request(small.app).post('/api/v1/sessions').set(auth).send({ state: { a: [[1]] } });
        expect(arrays.status).toBe(201);
        const deep = await request(small.app).post('/api/v1/sessions').set(auth).send({ state: { a: { b: { c: {} } } } });
        expectDepthProblem(deep, 4);
        const deepArray = await request(small.app).post('/api/v1/sessions').set(auth).send({ state: { a: [[[]]] } });
        expectDepthProblem(deepArray, 4);
        // Scalars do not count as a level.
        const scalars = await request(small.app).post('/api/v1/sessions').set(auth).send({ state: { a: { b: { c: 'x', d: 1, e: null, f: true } } } });
        expect(scalars.status).toBe(201);
      } finally {
        await small.close();
      }
    });

    it('accepts 64 levels by default (the documented limit) and a wide, shallow body of many members', async () => {
      const atLimit = `{"state":${nestedObjects(62)}}`; // body 1 + state 2 + 62 nested = 64
      const res = await postJson('/api/v1/sessions', atLimit);
      expect(res.status).toBe(201);
      expectDepthProblem(await postJson('/api/v1/sessions', `{"state":${nestedObjects(63)}}`));
      const wide: Record<string, number[]> = {};
      for (let i = 0; i < 5000; i += 1) wide[`k${i}`] = [i, i + 0.5];
      expect((await request(t.app).post('/api/v1/sessions').set(alice).send({ state: wide })).status).toBe(201);
    });
  });

  describe('non-finite numbers', () => {
    it.each([
      ['1e999 in state', '{"state":{"x":1e999}}', 'state.x'],
      ['-1e999 in state', '{"state":{"a":{"b":-1e999}}}', 'state.a.b'],
      ['1E400 in an array in state', '{"state":{"list":[1,2,1E400]}}', 'state.list.2'],
    ])('refuses %s with a 400 naming where it is', async (_name, body, where) => {
      const before = (await request(t.app).get('/api/v1/sessions?limit=100').set(alice).expect(200)).body.items.length;
      const res = await postJson('/api/v1/sessions', body);
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ type: '/problems/bad-request', status: 400 });
      expect(res.body.detail).toBe(`${where}: must be a finite number (1e999 and the like overflow to Infinity, which JSON cannot store).`);
      expect(res.body.limit).toBeUndefined();
      expect((await request(t.app).get('/api/v1/sessions?limit=100').set(alice).expect(200)).body.items.length).toBe(before);
    });

    it('refuses one in a PATCH and in message metadata; nothing is stored as null', async () => {
      const id = await newSession();
      const patch = await patchJson(`/api/v1/sessions/${id}`, '{"state":{"n":1e999}}');
      expect(patch.status).toBe(400);
      expect(patch.body.detail).toMatch(/^state\.n: must be a finite number/);
      const message = await postJson(`/api/v1/sessions/${id}/messages`, '{"role":"user","content":"x","metadata":{"score":-1e309}}');
      expect(message.status).toBe(400);
      expect(message.body.detail).toMatch(/^metadata\.score: must be a finite number/);
      expect((await request(t.app).get(`/api/v1/sessions/${id}`).set(alice).expect(200)).body).toMatchObject({ version: 1, state: {} });
      expect((await request(t.app).get(`/api/v1/sessions/${id}/messages`).set(alice).expect(200)).body.items).toEqual([]);
    });

    it('stores the largest finite numbers exactly', async () => {
      const res = await postJson('/api/v1/sessions', '{"state":{"max":1.7976931348623157e308,"min":-1.7976931348623157e308,"tiny":5e-324,"under":1e-999}}');
      expect(res.status).toBe(201);
      const read = await request(t.app).get(`/api/v1/sessions/${res.body.id}`).set(alice).expect(200);
      expect(read.body.state).toEqual({ max: Number.MAX_VALUE, min: -Number.MAX_VALUE, tiny: 5e-324, under: 0 });
    });
  });
});
