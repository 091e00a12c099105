/**
 * The file list on disk: a snapshot plus a journal of changes. An upload or a delete costs
 * one appended line, not a rewrite of the list; the journal is folded into the snapshot once
 * it outgrows it; replay survives every crash point and reads the older one-file layout.
 */
import { appendFile, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { filePart, multipart } from '../../helpers/multipart';
import { restartWithAlice, startWithSession } from '../../helpers/one-session';
import type { TestApp } from '../../helpers/test-app';

let t: TestApp;
let alice: { Authorization: string };
let sessionId: string;

beforeEach(async () => {
  ({ t, alice, sessionId } = await startWithSession({}));
});
afterEach(() => t.close());

const sessionDir = () => path.join(t.dataDir, 'sessions', 'alice', sessionId);
const journal = () => path.join(sessionDir(), 'files.jsonl');
const snapshot = () => path.join(sessionDir(), 'files.json');

async function upload(...names: string[]): Promise<Array<{ id: string; name: string }>> {
  const body = multipart(names.map((name) => filePart(name, 'text/plain', `bytes of ${name}`)));
  const res = await request(t.app).post(`/api/v1/sessions/${sessionId}/files`).set(alice).set('Content-Type', body.contentType).send(body.body);
  expect(res.status).toBe(201);
  return res.body.items;
}

async function listed(): Promise<string[]> {
  const res = await request(t.app).get(`/api/v1/sessions/${sessionId}/files?limit=1000`).set(alice).expect(200);
  return res.body.items.map((f: { name: string }) => f.name);
}

async function restart(): Promise<void> {
  ({ t, alice } = await restartWithAlice(t));
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
}

const exists = (file: string) => stat(file).then(() => true, () => false);

it('an upload appends one line for its whole batch and a delete one line; the list is never rewritten for them', async () => {
  const [a] = await upload('a.txt', 'b.txt', 'c.txt');
  await upload('d.txt');
  await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${a!.id}`).set(alice).expect(204);
  expect(await exists(snapshot())).toBe(false);
  const written = await lines(journal());
  expect(written).toHaveLength(3);
  expect(JSON.parse(written[0]!).add.map((f: { name: string }) => f.name)).toEqual(['a.txt', 'b.txt', 'c.txt']);
  expect(JSON.parse(written[2]!)).toEqual({ del: [a!.id] });
  await restart();
  expect(await listed()).toEqual(['b.txt', 'c.txt', 'd.txt']);
});

it('folds the journal into a snapshot once it has more lines than the list has files, so loading stays proportional to the files', async () => {
  const uploaded: Array<{ id: string; name: string }> = [];
  for (let i = 0; i < 70; i++) uploaded.push(...(await upload(`f${i}.txt`)));
  // Only additions: one line per file, nothing to fold yet.
  expect(await lines(journal())).toHaveLength(70);
  for (const file of uploaded.slice(0, 10)) {
    await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${file.id}`).set(alice).expect(204);
  }
  // The first deletion made 71 lines for 69 files: folded into a snapshot of the 69; the
  // nine deletions after it are the new journal.
  expect(JSON.parse(await readFile(snapshot(), 'utf8'))).toHaveLength(69);
  expect(await lines(journal())).toHaveLength(9);
  await restart();
  expect(await listed()).toEqual(uploaded.slice(10).map((f) => f.name));
});

it('a crash between writing the new snapshot and removing the journal replays to the same list', async () => {
  const [a] = await upload('a.txt', 'b.txt');
  await upload('c.txt');
  await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${a!.id}`).set(alice).expect(204);
  const current = (await request(t.app).get(`/api/v1/sessions/${sessionId}/files`).set(alice)).body.items;
  // What a compaction writes first; the journal it folds in is still there.
  await writeFile(snapshot(), JSON.stringify(current));
  await restart();
  expect(await listed()).toEqual(['b.txt', 'c.txt']);
});

it('a torn last journal line (an upload never acknowledged) is cut off, and the list goes on', async () => {
  await upload('a.txt');
  await appendFile(journal(), '{"add":[{"id":"5b1c');
  await restart();
  expect(await listed()).toEqual(['a.txt']);
  await upload('b.txt');
  expect(await listed()).toEqual(['a.txt', 'b.txt']);
  for (const line of await lines(journal())) expect(() => JSON.parse(line) as unknown).not.toThrow();
});

it('a damaged journal line before the end makes the session damaged, never skipped', async () => {
  await upload('a.txt');
  await upload('b.txt');
  const [first, second] = await lines(journal());
  await writeFile(journal(), `${first!.slice(0, 20)}\n${second}\n`);
  await restart();
  const res = await request(t.app).get(`/api/v1/sessions/${sessionId}/files`).set(alice);
  expect(res.status).toBe(500);
  expect(res.body.type).toBe('/problems/session-damaged');
});

it('reads the earlier layout (a files.json list alone) and goes on from it with the journal', async () => {
  const [a, b] = await upload('a.txt', 'b.txt');
  const records = (await request(t.app).get(`/api/v1/sessions/${sessionId}/files`).set(alice)).body.items;
  await writeFile(snapshot(), JSON.stringify(records));
  await writeFile(journal(), '');
  await restart();
  expect(await listed()).toEqual(['a.txt', 'b.txt']);
  await upload('c.txt');
  await request(t.app).delete(`/api/v1/sessions/${sessionId}/files/${a!.id}`).set(alice).expect(204);
  await restart();
  expect(await listed()).toEqual(['b.txt', 'c.txt']);
  expect(b).toBeDefined();
});

it('bytes without a journal entry (a commit cut short) are removed at load, and records without bytes dropped', async () => {
  const [a] = await upload('a.txt', 'b.txt');
  await writeFile(path.join(sessionDir(), 'files', '7d7b1c3e-1111-4a2b-9c3d-123456789abc'), 'orphan');
  await (await import('node:fs/promises')).rm(path.join(sessionDir(), 'files', a!.id));
  await restart();
  expect(await listed()).toEqual(['b.txt']);
  expect((await readdir(path.join(sessionDir(), 'files'))).sort()).toHaveLength(1);
  // The drop is recorded, so the next load does not find it again.
  expect(JSON.parse((await lines(journal())).at(-1)!)).toEqual({ del: [a!.id] });
});
