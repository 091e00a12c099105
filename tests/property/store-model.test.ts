/**
 * The store against a model: a generated sequence of operations by two users (create,
 * patch, delete sessions; append messages; upload and delete files; look at the other
 * user's things). Each answer is checked against a plain model kept here, and afterwards
 * each user's listing, /me usage, versions, files and message seqs (dense 1..n) match it,
 * and no answer to one user ever named an id of the other's.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { filePart, multipart } from '../helpers/multipart';
import { expectClientOrSuccess, runs, startPropertyApp, type PropertyApp, type RawResponse } from './support';

let p: PropertyApp;
beforeAll(async () => {
  p = await startPropertyApp();
});
afterAll(() => p.close());

type Who = 0 | 1;

interface ModelFile {
  size: number;
  sha256: string;
}
interface ModelSession {
  title: string;
  version: number;
  messages: number;
  files: ModelFile[];
}
interface Model {
  sessions: [ModelSession[], ModelSession[]];
}
/** The real ids, index for index with the model. */
interface Real {
  users: [string, string];
  sessions: [Array<{ id: string; files: string[] }>, Array<{ id: string; files: string[] }>];
  /** Every id ever created for each user, deleted ones included. */
  ids: [Set<string>, Set<string>];
}

let runNumber = 0;

/** One request as `who`; no answer may be a 5xx or name an id of the other user. */
async function call(real: Real, who: Who, method: string, path: string, body?: { type: string; data: Buffer | string }): Promise<RawResponse> {
  const res = await p.send({
    method,
    path,
    headers: { ...p.auth(real.users[who]), ...(body ? { 'Content-Type': body.type } : {}) },
    body: body?.data,
  });
  expectClientOrSuccess(res, `${real.users[who]}: ${method} ${path}`);
  for (const id of real.ids[who === 0 ? 1 : 0]) {
    if (res.text.includes(id)) throw new Error(`${real.users[who]} was shown ${id}, an id of the other user, by ${method} ${path}`);
  }
  return res;
}

const json = (value: unknown) => ({ type: 'application/json', data: JSON.stringify(value) });
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const titleArb = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 20 }).filter((s) => s.trim().length > 0);

class CreateSession implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly who: Who,
    readonly title: string,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const res = await call(real, this.who, 'POST', '/api/v1/sessions', json({ title: this.title, state: { n: model.sessions[this.who].length } }));
    expect(res.status).toBe(201);
    const session = res.json as { id: string; version: number; title: string };
    expect(session).toMatchObject({ version: 1, title: this.title.trim() });
    model.sessions[this.who].push({ title: this.title.trim(), version: 1, messages: 0, files: [] });
    real.sessions[this.who].push({ id: session.id, files: [] });
    real.ids[this.who].add(session.id);
  }
  toString = () => `create(${this.who}, ${JSON.stringify(this.title)})`;
}

class PatchSession implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly who: Who,
    readonly pick: number,
    readonly title: string,
    readonly ifMatch: 'none' | 'current' | 'stale',
  ) {}
  check = (model: Readonly<Model>) => model.sessions[this.who].length > 0;
  async run(model: Model, real: Real): Promise<void> {
    const i = this.pick % model.sessions[this.who].length;
    const session = model.sessions[this.who][i]!;
    const etag = this.ifMatch === 'current' ? `"v${session.version}"` : this.ifMatch === 'stale' ? `"v${session.version + 7}"` : undefined;
    const res = await p.send({
      method: 'PATCH',
      path: `/api/v1/sessions/${real.sessions[this.who][i]!.id}`,
      headers: { ...p.auth(real.users[this.who]), 'Content-Type': 'application/json', ...(etag ? { 'If-Match': etag } : {}) },
      body: JSON.stringify({ title: this.title }),
    });
    expectClientOrSuccess(res, `patch ${i}`);
    if (this.ifMatch === 'stale') {
      expect(res.status).toBe(412);
      return;
    }
    expect(res.status).toBe(200);
    session.version += 1;
    session.title = this.title.trim();
    expect(res.json).toMatchObject({ version: session.version, title: session.title });
  }
  toString = () => `patch(${this.who}, #${this.pick}, ${JSON.stringify(this.title)}, ${this.ifMatch})`;
}

class DeleteSession implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly who: Who,
    readonly pick: number,
  ) {}
  check = (model: Readonly<Model>) => model.sessions[this.who].length > 0;
  async run(model: Model, real: Real): Promise<void> {
    const i = this.pick % model.sessions[this.who].length;
    const id = real.sessions[this.who][i]!.id;
    expect((await call(real, this.who, 'DELETE', `/api/v1/sessions/${id}`)).status).toBe(204);
    expect((await call(real, this.who, 'GET', `/api/v1/sessions/${id}`)).status).toBe(404);
    model.sessions[this.who].splice(i, 1);
    real.sessions[this.who].splice(i, 1);
  }
  toString = () => `delete(${this.who}, #${this.pick})`;
}

class AppendMessage implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly who: Who,
    readonly pick: number,
    readonly content: string,
  ) {}
  check = (model: Readonly<Model>) => model.sessions[this.who].length > 0;
  async run(model: Model, real: Real): Promise<void> {
    const i = this.pick % model.sessions[this.who].length;
    const res = await call(real, this.who, 'POST', `/api/v1/sessions/${real.sessions[this.who][i]!.id}/messages`, json({ role: 'user', content: this.content }));
    expect(res.status).toBe(201);
    const session = model.sessions[this.who][i]!;
    session.messages += 1;
    expect((res.json as { seq: number }).seq).toBe(session.messages);
  }
  toString = () => `append(${this.who}, #${this.pick})`;
}

class UploadFile implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly who: Who,
    readonly pick: number,
    readonly text: string,
  ) {}
  check = (model: Readonly<Model>) => model.sessions[this.who].length > 0;
  async run(model: Model, real: Real): Promise<void> {
    const i = this.pick % model.sessions[this.who].length;
    const data = Buffer.from(this.text);
    const body = multipart([filePart('f.txt', 'text/plain', data)]);
    const res = await call(real, this.who, 'POST', `/api/v1/sessions/${real.sessions[this.who][i]!.id}/files`, { type: body.contentType, data: body.body });
    if (this.text.startsWith('#!')) {
      // A script with a shebang is refused whatever type it declares, and nothing is stored.
      expect(res.status).toBe(415);
      return;
    }
    expect(res.status).toBe(201);
    const item = (res.json as { items: Array<{ id: string; size: number; sha256: string }> }).items[0]!;
    expect(item).toMatchObject({ size: data.length, sha256: sha256(data) });
    model.sessions[this.who][i]!.files.push({ size: data.length, sha256: item.sha256 });
    real.sessions[this.who][i]!.files.push(item.id);
    real.ids[this.who].add(item.id);
  }
  toString = () => `upload(${this.who}, #${this.pick}, ${this.text.length} bytes)`;
}

class DeleteFile implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly who: Who,
    readonly pick: number,
    readonly pickFile: number,
  ) {}
  check = (model: Readonly<Model>) => model.sessions[this.who].some((s) => s.files.length > 0);
  async run(model: Model, real: Real): Promise<void> {
    const withFiles = model.sessions[this.who].flatMap((s, index) => (s.files.length > 0 ? [index] : []));
    const i = withFiles[this.pick % withFiles.length]!;
    const files = model.sessions[this.who][i]!.files;
    const f = this.pickFile % files.length;
    const path = `/api/v1/sessions/${real.sessions[this.who][i]!.id}/files/${real.sessions[this.who][i]!.files[f]!}`;
    expect((await call(real, this.who, 'DELETE', path)).status).toBe(204);
    expect((await call(real, this.who, 'GET', path)).status).toBe(404);
    files.splice(f, 1);
    real.sessions[this.who][i]!.files.splice(f, 1);
  }
  toString = () => `deleteFile(${this.who}, #${this.pick}, #${this.pickFile})`;
}

/** One user tries the other's session (and a file in it) by its exact id: a 404, like no such thing. */
class TouchOthers implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly who: Who,
    readonly pick: number,
    readonly action: 'get' | 'patch' | 'delete' | 'append' | 'list-files' | 'get-file' | 'delete-file',
  ) {}
  check = (model: Readonly<Model>) => model.sessions[this.who === 0 ? 1 : 0].length > 0;
  async run(model: Model, real: Real): Promise<void> {
    const other: Who = this.who === 0 ? 1 : 0;
    const target = real.sessions[other][this.pick % real.sessions[other].length]!;
    const base = `/api/v1/sessions/${target.id}`;
    const file = `${base}/files/${target.files[0] ?? '00000000-0000-4000-8000-000000000000'}`;
    const res =
      this.action === 'get' ? await call(real, this.who, 'GET', base)
      : this.action === 'patch' ? await call(real, this.who, 'PATCH', base, json({ title: 'stolen' }))
      : this.action === 'delete' ? await call(real, this.who, 'DELETE', base)
      : this.action === 'append' ? await call(real, this.who, 'POST', `${base}/messages`, json({ role: 'user', content: 'x' }))
      : this.action === 'list-files' ? await call(real, this.who, 'GET', `${base}/files`)
      : this.action === 'get-file' ? await call(real, this.who, 'GET', file)
      : await call(real, this.who, 'DELETE', file);
    expect(res.status).toBe(404);
    void model;
  }
  toString = () => `touchOthers(${this.who}, #${this.pick}, ${this.action})`;
}

const who = fc.constantFrom<Who>(0, 1);
const pick = fc.nat({ max: 50 });
const create = fc.tuple(who, titleArb).map(([w, t]) => new CreateSession(w, t));
const append = fc.tuple(who, pick, fc.string({ maxLength: 30 })).map(([w, i, c]) => new AppendMessage(w, i, c));
const upload = fc.tuple(who, pick, fc.string({ unit: 'grapheme-ascii', maxLength: 200 })).map(([w, i, t]) => new UploadFile(w, i, t));
// fc.commands picks among these evenly: listing creates, appends and uploads more than once
// makes sessions with several pages of messages and files common.
const commands = [
  create,
  create,
  append,
  append,
  append,
  upload,
  upload,
  fc.tuple(who, pick, titleArb, fc.constantFrom<'none' | 'current' | 'stale'>('none', 'current', 'stale')).map(([w, i, t, m]) => new PatchSession(w, i, t, m)),
  fc.tuple(who, pick).map(([w, i]) => new DeleteSession(w, i)),
  fc.tuple(who, pick, pick).map(([w, i, f]) => new DeleteFile(w, i, f)),
  fc
    .tuple(who, pick, fc.constantFrom<TouchOthers['action']>('get', 'patch', 'delete', 'append', 'list-files', 'get-file', 'delete-file'))
    .map(([w, i, a]) => new TouchOthers(w, i, a)),
];

/** Afterwards: everything each user can see matches the model exactly. */
async function expectMatchesModel(model: Model, real: Real): Promise<void> {
  for (const w of [0, 1] as const) {
    const sessions = model.sessions[w];
    const listed: Array<{ id: string; updatedAt: string }> = [];
    let cursor: string | null = null;
    do {
      const res = await call(real, w, 'GET', `/api/v1/sessions?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      const page = res.json as { items: Array<{ id: string; updatedAt: string }>; nextCursor: string | null };
      listed.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(listed.map((s) => s.id).sort()).toEqual(real.sessions[w].map((s) => s.id).sort());
    const times = listed.map((s) => Date.parse(s.updatedAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));

    const me = (await call(real, w, 'GET', '/api/v1/me')).json as { userId: string; usage: { sessions: number; bytes: number } };
    expect(me.userId).toBe(real.users[w]);
    expect(me.usage.sessions).toBe(sessions.length);
    const fileBytes = sessions.reduce((sum, s) => sum + s.files.reduce((a, f) => a + f.size, 0), 0);
    expect(me.usage.bytes).toBeGreaterThanOrEqual(fileBytes);
    if (sessions.length === 0) expect(me.usage.bytes).toBe(0);

    for (const [i, session] of sessions.entries()) {
      const { id, files } = real.sessions[w][i]!;
      const doc = (await call(real, w, 'GET', `/api/v1/sessions/${id}`)).json as { version: number; title: string };
      expect(doc).toMatchObject({ version: session.version, title: session.title });
      const seqs: number[] = [];
      let after = 0;
      for (;;) {
        const page = (await call(real, w, 'GET', `/api/v1/sessions/${id}/messages?after=${after}&limit=2`)).json as { items: Array<{ seq: number }>; nextCursor: number | null };
        seqs.push(...page.items.map((m) => m.seq));
        if (page.nextCursor === null || page.nextCursor === undefined) break;
        after = page.nextCursor;
      }
      expect(seqs).toEqual(Array.from({ length: session.messages }, (_, k) => k + 1));
      const listedFiles = (await call(real, w, 'GET', `/api/v1/sessions/${id}/files`)).json as { items: Array<{ id: string; size: number; sha256: string }> };
      expect(listedFiles.items.map((f) => f.id)).toEqual(files);
      expect(listedFiles.items.map((f) => ({ size: f.size, sha256: f.sha256 }))).toEqual(session.files);
    }
  }
}

describe('the store against a model', () => {
  it('two users, any sequence of operations: answers, listings, usage and seqs match the model; no id crosses over', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: 'max' }), async (cmds) => {
        runNumber += 1;
        const model: Model = { sessions: [[], []] };
        const real: Real = { users: [`a${runNumber}`, `b${runNumber}`], sessions: [[], []], ids: [new Set(), new Set()] };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await expectMatchesModel(model, real);
      }),
      runs(60),
    );
  });
});
