/**
 * The soak workload: many users, a few concurrent clients. A client takes a user nobody else
 * is working for, runs one operation of a weighted mix on that user's data (one to a few
 * requests), and lets the user go. Because a user is only ever worked on by one client at a
 * time, the client's model of each user's data (sessions, versions, message counts, files) is
 * exact, so every answer is checked: its status, and for a success its content too.
 *
 * Each user's data is bounded (sessions, messages per session, files per session; an
 * occasional DELETE /me starts the user over), so the data directory reaches a steady size
 * and the server's memory can be expected to as well.
 */
import { randomInt, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { multipart, SAMPLES } from '../helpers/multipart';
import { Client, NetworkError, type Answer } from './client';
import {
  checkMessage,
  FILE_KINDS,
  fileBytes,
  messageContent,
  randomFileSpec,
  randomTag,
  ROLES,
  sha256,
  stateFor,
  type FileSpec,
} from './content';
import type { Stats } from './stats';

const API = '/api/v1';
const MAX_SESSIONS = 8;
const MAX_MESSAGES = 200;
const MAX_FILES = 6;
const MAX_PAGES = 30;

interface FileModel extends FileSpec {
  id: string;
  name: string;
  sha256: string;
}

interface SessionModel {
  id: string;
  version: number;
  title: string;
  /** The tag of the state last written. */
  tag: string;
  messages: number;
  files: FileModel[];
}

interface UserModel {
  id: string;
  token: string;
  busy: boolean;
  sessions: SessionModel[];
}

interface Call {
  user?: UserModel;
  /** Overrides the user's token; null sends none. */
  token?: string | null;
  method: string;
  path: string;
  headers?: Record<string, string>;
  json?: unknown;
  body?: Buffer | string;
  contentType?: string;
}

export interface WorkloadOptions {
  users: number;
  connections: number;
  secret: string;
  /** Tokens stay valid at least this long. */
  tokenSeconds: number;
  /** Safety bound on the requests of the whole run. */
  maxRequests: number;
  /** Called after a request got no answer (the caller may check whether the server is gone). */
  onNoAnswer?: () => void;
}

function pick<T>(items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : items[randomInt(items.length)];
}

function userIdFor(i: number): string {
  // Some ids need the injective directory-name encoding (upper case, '|').
  return i % 5 === 4 ? `Soak|U${i}` : `soak-${i}`;
}

export class Workload {
  private readonly users: UserModel[];
  private readonly foreignToken: string;
  private stopping = false;
  private sent = 0;

  constructor(
    private readonly client: Client,
    private readonly stats: Stats,
    private readonly options: WorkloadOptions,
  ) {
    const sign = (sub: string, secret: string) => jwt.sign({ sub }, secret, { algorithm: 'HS256', expiresIn: options.tokenSeconds });
    this.users = Array.from({ length: options.users }, (_, i) => ({
      id: userIdFor(i),
      token: sign(userIdFor(i), options.secret),
      busy: false,
      sessions: [],
    }));
    this.foreignToken = sign('soak-0', `${options.secret}-not-the-one`);
  }

  /** Finishes the operations in flight, then the clients return. */
  stop(): void {
    this.stopping = true;
  }

  private get done(): boolean {
    return this.stopping || this.sent >= this.options.maxRequests;
  }

  /** One session per user, before the clock starts, so the mix finds data from the first minute. */
  async seed(): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: this.options.connections }, async () => {
        while (next < this.users.length && !this.done) {
          const user = this.users[next++]!;
          user.busy = true;
          await this.createSession(user);
          user.busy = false;
        }
      }),
    );
  }

  /** The clients, until `stop`. */
  run(): Promise<void> {
    return Promise.all(Array.from({ length: this.options.connections }, () => this.clientLoop())).then(() => undefined);
  }

  private async clientLoop(): Promise<void> {
    while (!this.done) {
      let user = pick(this.users)!;
      while (user.busy) user = pick(this.users)!;
      user.busy = true;
      try {
        await this.operation(user);
      } finally {
        user.busy = false;
      }
    }
  }

  // ---- requests -------------------------------------------------------------------------

  private async call(label: string, expect: number[], call: Call): Promise<Answer | undefined> {
    const headers: Record<string, string> = { ...call.headers };
    const token = call.token === undefined ? call.user?.token : call.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    let body = call.body;
    if (call.json !== undefined) body = JSON.stringify(call.json);
    if (body !== undefined && !headers['Content-Type']) headers['Content-Type'] = call.contentType ?? 'application/json';
    const refusal = expect.every((status) => status >= 400);
    this.sent++;
    let answer: Answer;
    try {
      answer = await this.client.send({ method: call.method, path: `${API}${call.path}`, headers, ...(body === undefined ? {} : { body }) });
    } catch (error) {
      if (!(error instanceof NetworkError)) throw error;
      this.stats.record(label, 'network', undefined, refusal);
      this.stats.problem(`${label}: no answer`, error.message);
      this.options.onNoAnswer?.();
      return undefined;
    }
    if (expect.includes(answer.status)) {
      this.stats.record(label, 'ok', answer.ms, refusal);
      return answer;
    }
    const outcome = answer.status >= 500 ? 'server' : refusal && answer.status < 400 ? 'breach' : 'unexpected';
    this.stats.record(label, outcome, answer.ms, refusal);
    this.stats.problem(
      `${label}: ${answer.status}, expected ${expect.join(' or ')}`,
      `${call.method} ${call.path}${call.user ? ` as ${call.user.id}` : ''}: ${answer.body.toString('utf8', 0, 300)}`,
    );
    return undefined;
  }

  private wrong(label: string, user: UserModel, detail: string): void {
    this.stats.wrongContent(label);
    this.stats.problem(`${label}: wrong content`, `${user.id}: ${detail}`);
  }

  private json<T>(label: string, user: UserModel, answer: Answer): T | undefined {
    try {
      return JSON.parse(answer.body.toString('utf8')) as T;
    } catch {
      this.wrong(label, user, `not JSON: ${answer.body.toString('utf8', 0, 100)}`);
      return undefined;
    }
  }

  // ---- the mix --------------------------------------------------------------------------

  private readonly mix: Array<[number, (user: UserModel) => Promise<unknown>]> = [
    [3, (u) => this.createSession(u)],
    [14, (u) => this.getSession(u)],
    [10, (u) => this.patchSession(u)],
    [2, (u) => this.burstPatch(u)],
    [5, (u) => this.listSessions(u)],
    [16, (u) => this.appendMessages(u)],
    [3, (u) => this.burstAppend(u)],
    [10, (u) => this.listMessages(u)],
    [6, (u) => this.upload(u)],
    [4, (u) => this.listFiles(u)],
    [10, (u) => this.download(u)],
    [3, (u) => this.deleteFile(u)],
    [1.5, (u) => this.deleteSession(u)],
    [2, (u) => this.getMe(u)],
    [0.25, (u) => this.deleteMe(u)],
    [10, (u) => this.refusal(u)],
  ];
  private readonly mixTotal = this.mix.reduce((sum, [weight]) => sum + weight, 0);

  private operation(user: UserModel): Promise<unknown> {
    let r = Math.random() * this.mixTotal;
    for (const [weight, run] of this.mix) {
      r -= weight;
      if (r < 0) return run(user);
    }
    return this.getSession(user);
  }

  // ---- sessions -------------------------------------------------------------------------

  private async createSession(user: UserModel): Promise<void> {
    if (user.sessions.length >= MAX_SESSIONS) return this.deleteSession(user);
    const label = 'POST /sessions';
    const tag = randomTag();
    const title = `soak ${tag}`;
    const answer = await this.call(label, [201], { user, method: 'POST', path: '/sessions', json: { title, state: stateFor(tag) } });
    if (!answer) return;
    const session = this.json<{ id: string; version: number; title: string; state: { tag?: string } }>(label, user, answer);
    if (!session) return;
    if (session.version !== 1 || session.title !== title || session.state?.tag !== tag) {
      this.wrong(label, user, `created ${JSON.stringify({ version: session.version, title: session.title })}`);
    }
    if (answer.headers.location !== `${API}/sessions/${session.id}` || answer.headers.etag !== '"v1"') {
      this.wrong(label, user, `Location ${answer.headers.location}, ETag ${answer.headers.etag}`);
    }
    user.sessions.push({ id: session.id, version: 1, title, tag, messages: 0, files: [] });
  }

  private checkSession(label: string, user: UserModel, model: SessionModel, answer: Answer): void {
    const got = this.json<{ id: string; version: number; title: string; state: { tag?: string } }>(label, user, answer);
    if (!got) return;
    if (got.id !== model.id || got.version !== model.version || got.title !== model.title || got.state?.tag !== model.tag) {
      this.wrong(
        label,
        user,
        `session ${model.id}: got version ${got.version} tag ${got.state?.tag}, expected version ${model.version} tag ${model.tag}`,
      );
    }
    if (answer.headers.etag !== `"v${model.version}"`) this.wrong(label, user, `ETag ${answer.headers.etag}, version ${model.version}`);
  }

  private async getSession(user: UserModel): Promise<void> {
    const session = pick(user.sessions);
    if (!session) return this.createSession(user);
    if (randomInt(4) === 0) {
      await this.call('GET /sessions/:id (If-None-Match)', [304], {
        user,
        method: 'GET',
        path: `/sessions/${session.id}`,
        headers: { 'If-None-Match': `"v${session.version}"` },
      });
      return;
    }
    const label = 'GET /sessions/:id';
    const answer = await this.call(label, [200], { user, method: 'GET', path: `/sessions/${session.id}` });
    if (answer) this.checkSession(label, user, session, answer);
  }

  private async patchSession(user: UserModel): Promise<void> {
    const session = pick(user.sessions);
    if (!session) return this.createSession(user);
    const r = randomInt(6);
    if (r === 5) {
      // A stale edit: refused, and nothing changes.
      const stale = session.version > 1 ? session.version - 1 : session.version + 1;
      await this.call('PATCH /sessions/:id (stale If-Match)', [412], {
        user,
        method: 'PATCH',
        path: `/sessions/${session.id}`,
        headers: { 'If-Match': `"v${stale}"` },
        json: { title: 'never stored' },
      });
      return;
    }
    const withIfMatch = r >= 3;
    const label = withIfMatch ? 'PATCH /sessions/:id (If-Match)' : 'PATCH /sessions/:id';
    const retitle = randomInt(4) === 0;
    const tag = retitle ? session.tag : randomTag();
    const title = retitle ? `soak retitled ${randomTag()}` : session.title;
    const answer = await this.call(label, [200], {
      user,
      method: 'PATCH',
      path: `/sessions/${session.id}`,
      ...(withIfMatch ? { headers: { 'If-Match': `"v${session.version}"` } } : {}),
      json: retitle ? { title } : { state: stateFor(tag) },
    });
    if (!answer) return;
    Object.assign(session, { version: session.version + 1, tag, title });
    this.checkSession(label, user, session, answer);
  }

  /** Three edits at once: each is applied, none lost; versions grow by exactly three. */
  private async burstPatch(user: UserModel): Promise<void> {
    const session = pick(user.sessions);
    if (!session) return this.createSession(user);
    const label = 'PATCH /sessions/:id (burst of 3)';
    const tags = [randomTag(), randomTag(), randomTag()];
    const answers = await Promise.all(
      tags.map((tag) => this.call(label, [200], { user, method: 'PATCH', path: `/sessions/${session.id}`, json: { state: stateFor(tag) } })),
    );
    const results = answers.map((a) => (a ? this.json<{ version: number; state: { tag?: string } }>(label, user, a) : undefined));
    const applied = results.filter((r): r is { version: number; state: { tag?: string } } => r !== undefined);
    const versions = applied.map((r) => r.version).sort((a, b) => a - b);
    const expected = applied.map((_, i) => session.version + i + 1);
    if (versions.join() !== expected.join()) this.wrong(label, user, `versions ${versions.join()} after ${session.version}`);
    const last = applied.reduce<(typeof applied)[number] | undefined>((top, r) => (!top || r.version > top.version ? r : top), undefined);
    if (last) Object.assign(session, { version: last.version, tag: last.state.tag ?? '' });
  }

  private async listSessions(user: UserModel): Promise<void> {
    const label = 'GET /sessions (cursor pages)';
    const limit = randomInt(1, 6);
    const seen: string[] = [];
    let cursor: string | null = null;
    let previous = Infinity;
    for (let page = 0; page < MAX_PAGES && !this.stopping; page++) {
      const query: string = `?limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const answer = await this.call(label, [200], { user, method: 'GET', path: `/sessions${query}` });
      if (!answer) return;
      const got = this.json<{ items: Array<{ id: string; updatedAt: string }>; nextCursor: string | null }>(label, user, answer);
      if (!got) return;
      if (got.items.length > limit) this.wrong(label, user, `${got.items.length} items for limit ${limit}`);
      for (const item of got.items) {
        const at = Date.parse(item.updatedAt);
        if (at > previous) this.wrong(label, user, `not newest first at ${item.id}`);
        previous = at;
        seen.push(item.id);
      }
      cursor = got.nextCursor;
      if (cursor === null) break;
    }
    if (this.stopping && cursor !== null) return;
    const expected = user.sessions.map((s) => s.id).sort();
    if ([...seen].sort().join() !== expected.join()) {
      this.wrong(label, user, `listed ${seen.length} sessions (${new Set(seen).size} distinct), model has ${expected.length}`);
    }
  }

  private async deleteSession(user: UserModel): Promise<void> {
    const session = pick(user.sessions);
    if (!session) return this.createSession(user);
    const answer = await this.call('DELETE /sessions/:id', [204], { user, method: 'DELETE', path: `/sessions/${session.id}` });
    if (!answer) return;
    user.sessions = user.sessions.filter((s) => s !== session);
    if (randomInt(3) === 0) {
      await this.call('GET /sessions/:id (deleted)', [404], { user, method: 'GET', path: `/sessions/${session.id}` });
    }
  }

  // ---- messages -------------------------------------------------------------------------

  /** A turn of a conversation: one to four appends in a row, mostly to the newest session. */
  private async appendMessages(user: UserModel): Promise<void> {
    const session = randomInt(5) < 3 ? user.sessions.at(-1) : pick(user.sessions);
    if (!session) return this.createSession(user);
    const count = randomInt(1, 5);
    for (let i = 0; i < count && !this.stopping; i++) {
      if (session.messages >= MAX_MESSAGES) return this.deleteSessionNamed(user, session);
      if (!(await this.appendMessage(user, session))) return;
    }
  }

  private async appendMessage(user: UserModel, session: SessionModel): Promise<boolean> {
    const label = 'POST /sessions/:id/messages';
    const seq = session.messages + 1;
    const body = { role: ROLES[seq % ROLES.length]!, content: messageContent(session.id, seq), ...(seq % 5 === 0 ? { metadata: { seq } } : {}) };
    const answer = await this.call(label, [201], { user, method: 'POST', path: `/sessions/${session.id}/messages`, json: body });
    if (!answer) return false;
    session.messages = seq;
    const got = this.json<{ seq: number; role: string; content: string; metadata: Record<string, unknown> }>(label, user, answer);
    if (!got) return false;
    if (got.seq !== seq || got.role !== body.role || got.content !== body.content || (seq % 5 === 0 && got.metadata?.seq !== seq)) {
      this.wrong(label, user, `appended seq ${seq}, answered seq ${got.seq}`);
      if (typeof got.seq === 'number') session.messages = Math.max(session.messages, got.seq);
      return false;
    }
    return true;
  }

  private async deleteSessionNamed(user: UserModel, session: SessionModel): Promise<void> {
    const answer = await this.call('DELETE /sessions/:id', [204], { user, method: 'DELETE', path: `/sessions/${session.id}` });
    if (answer) user.sessions = user.sessions.filter((s) => s !== session);
  }

  /** Three appends at once: seqs are the next three, dense, each once. */
  private async burstAppend(user: UserModel): Promise<void> {
    const session = pick(user.sessions);
    if (!session) return this.createSession(user);
    if (session.messages + 3 > MAX_MESSAGES) return this.deleteSessionNamed(user, session);
    const label = 'POST /sessions/:id/messages (burst of 3)';
    const answers = await Promise.all(
      [0, 1, 2].map(() =>
        this.call(label, [201], {
          user,
          method: 'POST',
          path: `/sessions/${session.id}/messages`,
          json: { role: 'tool', content: messageContent(session.id, undefined) },
        }),
      ),
    );
    const seqs = answers
      .map((a) => (a ? this.json<{ seq: number }>(label, user, a)?.seq : undefined))
      .filter((s): s is number => s !== undefined)
      .sort((a, b) => a - b);
    const expected = seqs.map((_, i) => session.messages + i + 1);
    if (seqs.join() !== expected.join()) this.wrong(label, user, `seqs ${seqs.join()} after ${session.messages}`);
    session.messages = Math.max(session.messages + seqs.length, seqs.at(-1) ?? 0);
  }

  private async listMessages(user: UserModel): Promise<void> {
    const session = pick(user.sessions);
    if (!session) return this.createSession(user);
    const label = 'GET /sessions/:id/messages';
    const count = session.messages;
    const after = randomInt(3) === 0 ? 0 : randomInt(count + 1);
    const limit = randomInt(4) === 0 ? undefined : randomInt(1, 61);
    const query = [after > 0 || randomInt(2) ? `after=${after}` : '', limit === undefined ? '' : `limit=${limit}`].filter(Boolean).join('&');
    const answer = await this.call(label, [200], { user, method: 'GET', path: `/sessions/${session.id}/messages${query ? `?${query}` : ''}` });
    if (!answer) return;
    const got = this.json<{ items: Array<{ seq: number; content: string }>; nextCursor: number | null }>(label, user, answer);
    if (!got) return;
    const pageSize = limit ?? 50;
    const expectedCount = Math.max(0, Math.min(pageSize, count - after));
    const seqs = got.items.map((m) => m.seq);
    const expectedSeqs = Array.from({ length: expectedCount }, (_, i) => after + i + 1);
    if (seqs.join() !== expectedSeqs.join()) {
      this.wrong(label, user, `after=${after} limit=${pageSize} of ${count}: seqs ${seqs[0]}..${seqs.at(-1)} (${seqs.length})`);
      return;
    }
    const expectedNext = after + pageSize < count ? after + pageSize : null;
    if (got.nextCursor !== expectedNext) this.wrong(label, user, `nextCursor ${got.nextCursor}, expected ${expectedNext}`);
    for (const message of got.items) {
      const problem = checkMessage(session.id, message);
      if (problem) {
        this.wrong(label, user, problem);
        break;
      }
    }
  }

  // ---- files ----------------------------------------------------------------------------

  private async upload(user: UserModel): Promise<void> {
    const session = pick(user.sessions);
    if (!session) return this.createSession(user);
    if (session.files.length >= MAX_FILES) return this.deleteFile(user);
    const label = 'POST /sessions/:id/files';
    const specs = Array.from({ length: Math.min(randomInt(1, 4), MAX_FILES - session.files.length) }, randomFileSpec);
    const parts = specs.map((spec, i) => ({
      name: `soak-${i + 1}-${randomTag()}.${FILE_KINDS[spec.kind].extension}`,
      spec,
      bytes: fileBytes(spec),
    }));
    const form = multipart(parts.map((p) => ({ filename: p.name, contentType: FILE_KINDS[p.spec.kind].contentType, data: p.bytes })));
    const answer = await this.call(label, [201], {
      user,
      method: 'POST',
      path: `/sessions/${session.id}/files`,
      body: form.body,
      contentType: form.contentType,
    });
    if (!answer) return;
    const got = this.json<{ items: Array<{ id: string; name: string; size: number; sha256: string }> }>(label, user, answer);
    if (!got) return;
    if (got.items.length !== parts.length) this.wrong(label, user, `${got.items.length} files stored of ${parts.length}`);
    got.items.forEach((item, i) => {
      const part = parts[i];
      if (!part) return;
      const digest = sha256(part.bytes);
      if (item.name !== part.name || item.size !== part.bytes.length || item.sha256 !== digest) {
        this.wrong(label, user, `file ${i + 1}: ${JSON.stringify(item)}, sent ${part.name} ${part.bytes.length} bytes`);
      }
      session.files.push({ ...part.spec, id: item.id, name: part.name, sha256: digest });
    });
  }

  private async listFiles(user: UserModel): Promise<void> {
    const session = pick(user.sessions);
    if (!session) return this.createSession(user);
    const label = 'GET /sessions/:id/files';
    const seen = new Map<string, { size: number; sha256: string }>();
    let cursor: string | null = null;
    // Whole list or paged (`nextCursor`), whichever the service answers.
    for (let page = 0; page < MAX_PAGES && !this.stopping; page++) {
      const query: string = cursor === null ? '' : `?cursor=${encodeURIComponent(cursor)}`;
      const answer = await this.call(label, [200], { user, method: 'GET', path: `/sessions/${session.id}/files${query}` });
      if (!answer) return;
      const got = this.json<{ items: Array<{ id: string; size: number; sha256: string }>; nextCursor?: string | null }>(label, user, answer);
      if (!got) return;
      for (const item of got.items) seen.set(item.id, item);
      cursor = got.nextCursor ?? null;
      if (cursor === null) break;
    }
    if (cursor !== null) return;
    const expected = session.files.map((f) => f.id).sort();
    if ([...seen.keys()].sort().join() !== expected.join()) {
      this.wrong(label, user, `listed ${seen.size} files, model has ${expected.length}`);
      return;
    }
    for (const file of session.files) {
      const item = seen.get(file.id)!;
      if (item.size !== file.size || item.sha256 !== file.sha256) this.wrong(label, user, `file ${file.id}: ${JSON.stringify(item)}`);
    }
  }

  private pickFile(user: UserModel): { session: SessionModel; file: FileModel } | undefined {
    const session = pick(user.sessions.filter((s) => s.files.length > 0));
    const file = session && pick(session.files);
    return session && file ? { session, file } : undefined;
  }

  private async download(user: UserModel): Promise<void> {
    const picked = this.pickFile(user);
    if (!picked) return this.upload(user);
    const { session, file } = picked;
    const path = `/sessions/${session.id}/files/${file.id}`;
    const r = randomInt(10);
    if (r === 9) {
      await this.call('GET /files/:id (If-None-Match)', [304], { user, method: 'GET', path, headers: { 'If-None-Match': `"sha256-${file.sha256}"` } });
      return;
    }
    const bytes = fileBytes(file);
    if (r >= 6) {
      const label = 'GET /files/:id (Range)';
      const start = randomInt(file.size);
      const end = start + randomInt(file.size - start);
      const answer = await this.call(label, [206], { user, method: 'GET', path, headers: { Range: `bytes=${start}-${end}` } });
      if (!answer) return;
      if (!answer.body.equals(bytes.subarray(start, end + 1)) || answer.headers['content-range'] !== `bytes ${start}-${end}/${file.size}`) {
        this.wrong(label, user, `bytes=${start}-${end} of ${file.size}: ${answer.body.length} bytes, Content-Range ${answer.headers['content-range']}`);
      }
      return;
    }
    const label = 'GET /files/:id';
    const answer = await this.call(label, [200], { user, method: 'GET', path });
    if (!answer) return;
    if (answer.body.length !== file.size || sha256(answer.body) !== file.sha256) {
      this.wrong(label, user, `file ${file.id}: ${answer.body.length} bytes, stored ${file.size}; sha256 differs`);
    }
  }

  private async deleteFile(user: UserModel): Promise<void> {
    const picked = this.pickFile(user);
    if (!picked) return this.upload(user);
    const { session, file } = picked;
    const path = `/sessions/${session.id}/files/${file.id}`;
    const answer = await this.call('DELETE /files/:id', [204], { user, method: 'DELETE', path });
    if (!answer) return;
    session.files = session.files.filter((f) => f !== file);
    if (randomInt(3) === 0) await this.call('GET /files/:id (deleted)', [404], { user, method: 'GET', path });
  }

  // ---- the user -------------------------------------------------------------------------

  private async getMe(user: UserModel): Promise<void> {
    const label = 'GET /me';
    const answer = await this.call(label, [200], { user, method: 'GET', path: '/me' });
    if (!answer) return;
    const got = this.json<{ userId: string; usage: { sessions: number; bytes: number } }>(label, user, answer);
    if (got && (got.userId !== user.id || got.usage?.sessions !== user.sessions.length)) {
      this.wrong(label, user, `/me says ${got.userId} with ${got.usage?.sessions} sessions, model has ${user.sessions.length}`);
    }
  }

  private async deleteMe(user: UserModel): Promise<void> {
    const answer = await this.call('DELETE /me', [204], { user, method: 'DELETE', path: '/me' });
    if (!answer) return;
    user.sessions = [];
    await this.getMe(user);
  }

  // ---- requests that must be refused ----------------------------------------------------

  /** Another user's session (and file), for the 404 that must not tell it exists. */
  private foreign(user: UserModel): { session: SessionModel; file: FileModel | undefined } | undefined {
    for (let tries = 0; tries < 10; tries++) {
      const other = pick(this.users)!;
      const session = other === user ? undefined : pick(other.sessions);
      if (session) return { session, file: pick(session.files) };
    }
    return undefined;
  }

  private refusal(user: UserModel): Promise<unknown> {
    const own = pick(user.sessions);
    const ownPath = own ? `/sessions/${own.id}` : `/sessions/${randomUUID()}`;
    const foreign = this.foreign(user);
    const foreignPath = foreign ? `/sessions/${foreign.session.id}` : `/sessions/${randomUUID()}`;
    const cases: Array<() => Promise<unknown>> = [
      () => this.call('GET /sessions/:id (another user)', [404], { user, method: 'GET', path: foreignPath }),
      () => this.call('PATCH /sessions/:id (another user)', [404], { user, method: 'PATCH', path: foreignPath, json: { title: 'mine now' } }),
      () => this.call('DELETE /sessions/:id (another user)', [404], { user, method: 'DELETE', path: foreignPath }),
      () =>
        this.call('POST /messages (another user)', [404], {
          user,
          method: 'POST',
          path: `${foreignPath}/messages`,
          json: { role: 'user', content: 'not yours' },
        }),
      () => this.call('GET /messages (another user)', [404], { user, method: 'GET', path: `${foreignPath}/messages` }),
      () =>
        this.call('GET /files/:id (another user)', [404], {
          user,
          method: 'GET',
          path: `${foreignPath}/files/${foreign?.file?.id ?? randomUUID()}`,
        }),
      () =>
        // Another user's file id under one's own session.
        this.call('GET /files/:id (foreign id, own session)', [404], {
          user,
          method: 'GET',
          path: `${ownPath}/files/${foreign?.file?.id ?? randomUUID()}`,
        }),
      () => {
        const form = multipart([{ filename: 'x.txt', contentType: 'text/plain', data: 'not yours' }]);
        return this.call('POST /files (another user)', [404], {
          user,
          method: 'POST',
          path: `${foreignPath}/files`,
          body: form.body,
          contentType: form.contentType,
        });
      },
      () => this.call('GET /sessions/:id (never existed)', [404], { user, method: 'GET', path: `/sessions/${randomUUID()}` }),
      () =>
        this.call('GET /sessions/:id (malformed id)', [400, 404], {
          user,
          method: 'GET',
          path: `/sessions/${pick(['not-a-uuid', '..%2F..%2Fetc', '%2e%2e', 'x'.repeat(300)])!}`,
        }),
      () => this.call('POST /sessions (unknown field)', [400], { user, method: 'POST', path: '/sessions', json: { title: 't', owner: 'root' } }),
      () => this.call('POST /sessions (malformed JSON)', [400], { user, method: 'POST', path: '/sessions', body: '{"title":' }),
      () =>
        this.call('POST /sessions (text/plain)', [415], { user, method: 'POST', path: '/sessions', body: 'title=x', contentType: 'text/plain' }),
      () => this.call('PATCH /sessions/:id (empty body)', [400], { user, method: 'PATCH', path: ownPath, json: {} }),
      () =>
        this.call('POST /messages (bad role)', [400], { user, method: 'POST', path: `${ownPath}/messages`, json: { role: 'root', content: 'x' } }),
      () => this.call('GET /messages (limit=0)', [400], { user, method: 'GET', path: `${ownPath}/messages?limit=0` }),
      () => this.call('GET /sessions (forged cursor)', [400], { user, method: 'GET', path: '/sessions?cursor=not-a-cursor' }),
      () => {
        const form = multipart([{ filename: 'photo.png', contentType: 'image/png', data: SAMPLES.elf }]);
        // Without a session of one's own, the same request is refused as a 404 before its body is read.
        return this.call('POST /files (ELF as image/png)', [own ? 415 : 404], {
          user,
          method: 'POST',
          path: `${ownPath}/files`,
          body: form.body,
          contentType: form.contentType,
        });
      },
      () => {
        const picked = this.pickFile(user);
        if (!picked) return this.call('GET /me (no token)', [401], { token: null, method: 'GET', path: '/me' });
        return this.call('GET /files/:id (Range past the end)', [416], {
          user,
          method: 'GET',
          path: `/sessions/${picked.session.id}/files/${picked.file.id}`,
          headers: { Range: `bytes=${picked.file.size + 10}-` },
        });
      },
      () => this.call('GET /me (no token)', [401], { token: null, method: 'GET', path: '/me' }),
      () => this.call('GET /sessions (wrongly signed token)', [401], { token: this.foreignToken, method: 'GET', path: '/sessions' }),
    ];
    return pick(cases)!();
  }
}
