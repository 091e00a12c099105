/**
 * The fs backend's message log, seen from both sides: one JSON line per message in the
 * session's directory, and a torn tail a crash left (written here by hand) cut off on the next
 * start, after which pages (read from the log's checkpoints) and the next seq carry on from
 * the last whole message. That pages are exact on every backend: tests/http/messages-paging.
 */
import { appendFile, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import request from 'supertest';
import { CHECKPOINT_LINES } from '../../../src/storage/fs/message-log';
import { contentOf, messagePages } from '../../helpers/message-pages';
import { restartWithAlice, startWithSession } from '../../helpers/one-session';
import type { TestApp } from '../../helpers/test-app';

let t: TestApp;
let alice: { Authorization: string };
let sessionId: string;

beforeEach(async () => {
  ({ t, alice, sessionId } = await startWithSession({ title: 'chat' }));
});
afterEach(() => t.close());

const messagesUrl = () => `/api/v1/sessions/${sessionId}/messages`;
const sessionDir = () => path.join(t.dataDir, 'sessions', 'alice', sessionId);
const log = () => path.join(sessionDir(), 'messages.jsonl');

async function restart(): Promise<void> {
  ({ t, alice } = await restartWithAlice(t));
}

async function loggedSeqs(): Promise<number[]> {
  return (await readFile(log(), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l).seq as number);
}

const { expectPagesCorrect } = messagePages(() => ({ t, alice, sessionId }));

it('stores each message as one line in the session directory and nothing elsewhere', async () => {
  await request(t.app).post(messagesUrl()).set(alice).send({ role: 'user', content: 'line\nbreak' }).expect(201);
  expect((await readdir(sessionDir())).sort()).toEqual(['messages.jsonl', 'session.json']);
  const text = await readFile(log(), 'utf8');
  expect(text.split('\n')).toHaveLength(2);
});

it('recovers from a torn last line left by a crash: the next append gets the next dense seq', async () => {
  await request(t.app).post(messagesUrl()).set(alice).send({ role: 'user', content: 'kept' }).expect(201);
  await appendFile(log(), '{"id":"torn","seq":2,"ro');
  await restart();
  const listed = await request(t.app).get(messagesUrl()).set(alice);
  expect(listed.body.items.map((m: { content: string }) => m.content)).toEqual(['kept']);
  const next = await request(t.app).post(messagesUrl()).set(alice).send({ role: 'user', content: 'after' });
  expect(next.body.seq).toBe(2);
  expect(await loggedSeqs()).toEqual([1, 2]);
});

it('after a torn tail is cut, pages and the next seq carry on from the last whole message', async () => {
  const total = CHECKPOINT_LINES + 1;
  for (let seq = 1; seq <= total; seq++) {
    await request(t.app).post(messagesUrl()).set(alice).send({ role: 'user', content: contentOf(seq) }).expect(201);
  }
  await appendFile(log(), '{"id":"torn","seq":');
  await restart();
  await expectPagesCorrect(total);
  const next = await request(t.app).post(messagesUrl()).set(alice).send({ role: 'user', content: contentOf(total + 1) }).expect(201);
  expect(next.body.seq).toBe(total + 1);
  await expectPagesCorrect(total + 1);
});
