/**
 * The storage contract: what every backend (a MetadataBackend with its BlobStore) must do
 * for the users of the service, as one suite that runs once per backend
 * (tests/storage/<backend>/contract.test.ts). Cases go through the SessionStore, so they
 * check what users rely on, and call the ports directly only where that is the plainest
 * check (bytes gone from the blob store, another user's ids at the port). They never look
 * at how a backend lays its data out (no paths, no tables), so they run unchanged against
 * the filesystem and a database.
 *
 * Charges are part of the contract, so that a quota means the same on every backend: a
 * document costs its JSON, a message its JSON line with the newline, a file its size plus
 * FILE_OVERHEAD_BYTES.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { AppError } from '../../src/errors';
import { newObjectId } from '../../src/sessions/ids';
import type { Limits } from '../../src/sessions/limits';
import { CursorCodec } from '../../src/sessions/listing-cursor';
import {
  FILE_OVERHEAD_BYTES,
  type BlobRef,
  type BlobStore,
  type FileRecord,
  type JsonObject,
  type MetadataBackend,
  type SessionDocument,
  type SessionSummary,
  type StoredMessage,
} from '../../src/sessions/ports';
import { SessionStore } from '../../src/sessions/session-store';

/** What a case gets: fresh, empty storage. */
export interface ContractSubject {
  backend: MetadataBackend;
  blobs: BlobStore;
  /**
   * A store for `userId` on this storage, with roomy limits unless `limits` says otherwise;
   * `blobs` replaces the subject's blob store in front of the store (to watch what it puts).
   */
  store(userId: string, options?: { limits?: Partial<Limits>; blobs?: BlobStore }): SessionStore;
  /**
   * Finishes now what the backend does eventually (deleting the bytes of deleted files through
   * an outbox), so a case can check that it was done.
   */
  settle(): Promise<void>;
}

export type ContractCase = (subject: ContractSubject) => Promise<void>;

export type OpenedContractSubject = ContractSubject & { close(): Promise<void> };

/** The busy 2-core box runs 50-way races and fsyncs; none of these is a performance test. */
const CASE_TIMEOUT_MS = 120_000;
const OPEN_TIMEOUT_MS = 60_000;

const ROOMY: Limits = {
  sessions: 10_000,
  bytes: 1 << 30,
  stateBytes: 64 * 1024,
  messageBytes: 64 * 1024,
  uploadBytes: 16 * 1024 * 1024,
  filesPerUpload: 20,
  filesPerSession: 1000,
  uploadTypes: ['text/plain', 'text/csv', 'application/json', 'image/png', 'application/pdf'],
};

/**
 * Every reading is a millisecond after the one before. Listings are ordered by time, and a
 * clock that gave two writes the same millisecond would make "updatedAt moves" and
 * newest-first order a matter of luck.
 */
function tickingClock(): () => Date {
  let last = Date.now();
  return () => {
    last = Math.max(last + 1, Date.now());
    return new Date(last);
  };
}

/** The subject for storage opened by a backend (or a wrapper of one): the domain on top of its ports. */
export function contractSubject(ports: { backend: MetadataBackend; blobs: BlobStore }, settle: () => Promise<void> = async () => undefined): ContractSubject {
  const cursors = new CursorCodec(randomBytes(32));
  const now = tickingClock();
  return {
    backend: ports.backend,
    blobs: ports.blobs,
    store: (userId, options = {}) =>
      new SessionStore(userId, {
        backend: ports.backend,
        blobs: options.blobs ?? ports.blobs,
        limits: { ...ROOMY, ...options.limits },
        now,
        cursors,
      }),
    settle,
  };
}

// ---------------------------------------------------------------------------------------
// Helpers: what a client does, reduced to the domain's calls.

interface FileToSend {
  name: string;
  type: string;
  data: Buffer;
}

function textFile(name: string, content: string | Buffer): FileToSend {
  return { name, type: 'text/plain', data: Buffer.from(content) };
}

/** A client's body arrives in pieces; so do these bytes, to exercise per-chunk admission. */
function streamOf(data: Buffer, chunkBytes = 1000): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += chunkBytes) chunks.push(data.subarray(at, at + chunkBytes));
  return Readable.from(chunks, { objectMode: false });
}

/** One multipart request, as the HTTP layer handles it: a refused part aborts the whole upload. */
async function upload(store: SessionStore, sessionId: string, files: FileToSend[]): Promise<FileRecord[]> {
  const receiving = await store.beginUpload(sessionId);
  try {
    await Promise.all(files.map((f) => receiving.addFile(streamOf(f.data), { filename: f.name, mimeType: f.type })));
  } catch (error) {
    await receiving.abort();
    throw error;
  }
  return receiving.commit();
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A file's bytes as a user downloads them. */
async function download(store: SessionStore, sessionId: string, fileId: string): Promise<Buffer> {
  const file = await store.openFile(sessionId, fileId);
  return bytesOf(file.stream());
}

/** Bytes under `ref` straight from the blob store, or null; read to the end, the blob closes itself. */
async function blobAt(blobs: BlobStore, ref: BlobRef): Promise<Buffer | null> {
  const blob = await blobs.open(ref);
  return blob && bytesOf(blob.stream());
}

interface Refusal {
  name: string;
  status: number;
  detail: string;
  limit?: string | number | boolean | undefined;
}

/** What a client would see of a failure: the domain's error, or a plain failure that is not one. */
function refusalFrom(error: unknown): Refusal {
  if (error instanceof AppError) return { name: error.name, status: error.status, detail: error.detail, limit: error.extras.limit };
  return { name: `not a domain error: ${String(error)}`, status: 0, detail: '' };
}

/** How the domain refused `work`; a success is shown as such, so a diff names it. */
async function refusalOf(work: Promise<unknown>): Promise<Refusal> {
  try {
    await work;
  } catch (error) {
    return refusalFrom(error);
  }
  return { name: 'succeeded', status: 0, detail: '' };
}

const notFound = (detail = expect.any(String)) => ({ name: 'NotFound', status: 404, detail, limit: undefined });
const quotaExceeded = (limit: string) => ({ name: 'QuotaExceeded', status: 507, detail: expect.any(String), limit });

function fulfilled<T>(outcomes: Array<PromiseSettledResult<T>>): T[] {
  return outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
}

function refusals(outcomes: Array<PromiseSettledResult<unknown>>): Refusal[] {
  return outcomes.flatMap((o) => (o.status === 'rejected' ? [refusalFrom(o.reason)] : []));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function duplicatesIn(ids: string[]): string[] {
  return ids.filter((id, i) => ids.indexOf(id) !== i);
}

function summaryOf(document: SessionDocument): SessionSummary {
  const { state: _state, ...summary } = document;
  return summary;
}

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

async function allSessions(store: SessionStore): Promise<SessionSummary[]> {
  const items: SessionSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listSessions({ cursor, limit: 100 });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return items;
}

async function allMessages(store: SessionStore, sessionId: string, limit = 100): Promise<StoredMessage[]> {
  const items: StoredMessage[] = [];
  let after = 0;
  for (;;) {
    const page = await store.listMessages(sessionId, { after, limit });
    items.push(...page.items);
    if (page.nextCursor === null) return items;
    after = page.nextCursor;
  }
}

async function allFiles(store: SessionStore, sessionId: string): Promise<FileRecord[]> {
  const items: FileRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listFiles(sessionId, { cursor, limit: 100 });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return items;
}

/** What the user's stored data is charged, added up from what can be read back. */
async function chargeOfEverything(store: SessionStore): Promise<{ sessions: number; files: number; bytes: number }> {
  let bytes = 0;
  let files = 0;
  const sessions = await allSessions(store);
  for (const summary of sessions) {
    bytes += jsonBytes(await store.getSession(summary.id));
    for (const message of await allMessages(store, summary.id)) bytes += jsonBytes(message) + 1;
    for (const file of await allFiles(store, summary.id)) {
      bytes += file.size + FILE_OVERHEAD_BYTES;
      files += 1;
    }
  }
  return { sessions: sessions.length, files, bytes };
}

const message = (content: string, metadata: JsonObject = {}) => ({ role: 'user', content, metadata });

/** Every operation a user has on a session and one of its files, each to be refused alike. */
function everyOperation(store: SessionStore, sessionId: string, fileId: string): Array<[string, () => Promise<unknown>]> {
  return [
    ['getSession', () => store.getSession(sessionId)],
    ['updateSession', () => store.updateSession(sessionId, { title: 'taken over' }, undefined)],
    ['updateSession with If-Match *', () => store.updateSession(sessionId, { state: { x: 1 } }, '*')],
    ['updateSession with If-Match "v1"', () => store.updateSession(sessionId, { state: { x: 1 } }, ['"v1"'])],
    ['appendMessage', () => store.appendMessage(sessionId, message('hello'))],
    ['listMessages', () => store.listMessages(sessionId, { after: 0, limit: 10 })],
    ['beginUpload', () => store.beginUpload(sessionId)],
    ['listFiles', () => store.listFiles(sessionId, { cursor: undefined, limit: 10 })],
    ['openFile', () => store.openFile(sessionId, fileId)],
    ['deleteFile', () => store.deleteFile(sessionId, fileId)],
    ['deleteSession', () => store.deleteSession(sessionId)],
  ];
}

async function refusalsOfEveryOperation(store: SessionStore, sessionId: string, fileId: string) {
  const seen: Array<{ operation: string } & Refusal> = [];
  for (const [operation, run] of everyOperation(store, sessionId, fileId)) seen.push({ operation, ...(await refusalOf(run())) });
  return seen;
}

/** A session holding a message and a file, so that every kind of data is there to be reached. */
async function populatedSession(store: SessionStore, title: string) {
  const session = await store.createSession({ title, state: { owner: store.userId } });
  await store.appendMessage(session.id, message(`${title}: first`));
  const data = Buffer.from(`${title}: file bytes`);
  const [file] = await upload(store, session.id, [textFile(`${title}.txt`, data)]);
  return { session, file: file!, data };
}

/** A blob store that remembers every ref it was asked to put, so bytes of refused files can be looked for. */
function watchedBlobs(inner: BlobStore): { blobs: BlobStore; refs: BlobRef[] } {
  const refs: BlobRef[] = [];
  return {
    refs,
    blobs: {
      put: (ref, source) => {
        refs.push(ref);
        return inner.put(ref, source);
      },
      open: (ref) => inner.open(ref),
      delete: (ref) => inner.delete(ref),
    },
  };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const ELF_HEAD = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);

// ---------------------------------------------------------------------------------------
// The cases.

async function sessionLifecycle(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const created = await alice.createSession({ title: 'first', state: { step: 1 } });
  expect(created).toMatchObject({ title: 'first', version: 1, state: { step: 1 } });
  expect(created.updatedAt).toBe(created.createdAt);
  expect(await alice.getSession(created.id)).toEqual(created);
  expect(await allSessions(alice)).toEqual([summaryOf(created)]);

  const renamed = await alice.updateSession(created.id, { title: 'renamed' }, undefined);
  expect(renamed).toEqual({ ...created, title: 'renamed', version: 2, updatedAt: expect.any(String) });
  expect(renamed.updatedAt > created.updatedAt).toBe(true);
  const restated = await alice.updateSession(created.id, { state: { step: 2 } }, ['"v2"']);
  expect(restated).toEqual({ ...renamed, state: { step: 2 }, version: 3, updatedAt: expect.any(String) });
  expect(restated.updatedAt > renamed.updatedAt).toBe(true);
  expect(await alice.getSession(created.id)).toEqual(restated);
  expect(await allSessions(alice)).toEqual([summaryOf(restated)]);
  expect(await alice.usage()).toEqual({ sessions: 1, files: 0, bytes: jsonBytes(restated) });

  await alice.deleteSession(created.id);
  expect(await refusalOf(alice.getSession(created.id))).toEqual(notFound());
  expect(await allSessions(alice)).toEqual([]);
  expect(await alice.usage()).toEqual({ sessions: 0, files: 0, bytes: 0 });
}

async function missingIsNotFound(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const gone = await populatedSession(alice, 'gone');
  await alice.deleteSession(gone.session.id);
  const deleted = await refusalsOfEveryOperation(alice, gone.session.id, gone.file.id);
  const neverExisted = await refusalsOfEveryOperation(alice, newObjectId(), newObjectId());
  expect(neverExisted).toEqual(everyOperation(alice, '', '').map(([operation]) => ({ operation, ...notFound() })));
  expect(deleted).toEqual(neverExisted);
  await subject.settle();
  expect(await blobAt(subject.blobs, { userId: 'alice', sessionId: gone.session.id, fileId: gone.file.id })).toBeNull();

  // A deleted file in a live session is as missing as one that never was.
  const live = await populatedSession(alice, 'live');
  await alice.deleteFile(live.session.id, live.file.id);
  for (const fileId of [live.file.id, newObjectId()]) {
    expect(await refusalOf(alice.openFile(live.session.id, fileId))).toEqual(notFound('No such file.'));
    expect(await refusalOf(alice.deleteFile(live.session.id, fileId))).toEqual(notFound('No such file.'));
  }
  expect(await allFiles(alice, live.session.id)).toEqual([]);
  expect(await alice.usage()).toEqual(await chargeOfEverything(alice));
}

async function otherUsersDataIsNotFound(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const bob = subject.store('bob');
  const hers = await populatedSession(alice, 'hers');
  const his = await bob.createSession({ title: 'his', state: {} });
  const aliceUsage = await alice.usage();

  const reachingHers = await refusalsOfEveryOperation(bob, hers.session.id, hers.file.id);
  const reachingNothing = await refusalsOfEveryOperation(bob, newObjectId(), newObjectId());
  expect(reachingNothing).toEqual(everyOperation(bob, '', '').map(([operation]) => ({ operation, ...notFound() })));
  expect(reachingHers).toEqual(reachingNothing);

  // The same at the ports: nothing of hers exists under his user id.
  const { backend } = subject;
  expect(await backend.readSession('bob', hers.session.id)).toBeNull();
  expect(await backend.listMessages('bob', hers.session.id, { afterSeq: 0, limit: 10 })).toBeNull();
  expect(await backend.listFiles('bob', hers.session.id, { after: undefined, limit: 10 })).toBeNull();
  expect(await backend.findFile('bob', hers.session.id, hers.file.id)).toBeNull();
  // (The blob store is reached only through a record the metadata backend gave for that user,
  // so it need not check the user itself: an object store may key bytes by file id alone.)

  // Nothing he tried changed anything of hers, and his listing and usage hold only his own.
  expect(await alice.getSession(hers.session.id)).toEqual(hers.session);
  expect((await allMessages(alice, hers.session.id)).map((m) => m.content)).toEqual(['hers: first']);
  expect(await download(alice, hers.session.id, hers.file.id)).toEqual(hers.data);
  expect(await alice.usage()).toEqual(aliceUsage);
  expect(await allSessions(bob)).toEqual([summaryOf(his)]);
  expect(await bob.usage()).toEqual({ sessions: 1, files: 0, bytes: jsonBytes(his) });
}

async function sessionPagesUnderWrites(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const bob = subject.store('bob');
  const originals: SessionDocument[] = [];
  for (const i of range(0, 24)) originals.push(await alice.createSession({ title: `s${i}`, state: {} }));
  // Updated while the listing runs: each moves to the front, so it may be seen or not, but never twice.
  const moving = originals.filter((_, i) => i % 5 === 1).reverse();
  const steady = originals.filter((s) => !moving.includes(s)).map((s) => s.id);
  const alicesIds = new Set(originals.map((s) => s.id));

  const writesDuringPage = async (step: number): Promise<void> => {
    const mover = moving[step];
    await Promise.all([
      alice.createSession({ title: `new ${step}`, state: {} }).then((s) => alicesIds.add(s.id)),
      bob.createSession({ title: `bob ${step}`, state: {} }),
      mover && alice.updateSession(mover.id, { title: `moved ${step}` }, undefined),
    ]);
  };

  const seen: string[] = [];
  let cursor: string | undefined;
  for (let step = 0; step === 0 || cursor !== undefined; step += 1) {
    if (step > 50) throw new Error('the listing never ended');
    const [page] = await Promise.all([alice.listSessions({ cursor, limit: 4 }), writesDuringPage(step)]);
    expect(page.items.length).toBeLessThanOrEqual(4);
    seen.push(...page.items.map((s) => s.id));
    cursor = page.nextCursor ?? undefined;
  }

  expect(seen.filter((id) => !alicesIds.has(id))).toEqual([]);
  expect(duplicatesIn(seen)).toEqual([]);
  // Every session there all along and untouched is seen exactly once, newest first.
  expect(seen.filter((id) => steady.includes(id))).toEqual([...steady].reverse());
}

async function filePagesUnderWrites(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const session = await alice.createSession({ title: 'files', state: {} });
  const originals: FileRecord[] = [];
  for (const i of range(0, 12)) originals.push(...(await upload(alice, session.id, [textFile(`f${i}.txt`, `file ${i}`)])));
  const sessionFiles = new Set(originals.map((f) => f.id));
  // Deleted while the listing runs, the later ones first so that some go before they are reached.
  const doomed = originals.filter((_, i) => i % 4 === 3).reverse();
  const deleted = new Set<string>();

  const writesDuringPage = async (step: number): Promise<void> => {
    const victim = doomed[step];
    await Promise.all([
      upload(alice, session.id, [textFile(`new${step}.txt`, `new ${step}`)]).then((files) => files.forEach((f) => sessionFiles.add(f.id))),
      victim && alice.deleteFile(session.id, victim.id).then(() => deleted.add(victim.id)),
    ]);
  };

  const seen: string[] = [];
  let cursor: string | undefined;
  for (let step = 0; step === 0 || cursor !== undefined; step += 1) {
    if (step > 50) throw new Error('the listing never ended');
    const [page] = await Promise.all([alice.listFiles(session.id, { cursor, limit: 4 }), writesDuringPage(step)]);
    seen.push(...page.items.map((f) => f.id));
    cursor = page.nextCursor ?? undefined;
    // The file the cursor names goes too: the next page must start where it was.
    const last = page.items.at(-1);
    if (cursor !== undefined && last && !deleted.has(last.id) && !doomed.some((f) => f.id === last.id)) {
      await alice.deleteFile(session.id, last.id);
      deleted.add(last.id);
    }
  }

  expect(seen.filter((id) => !sessionFiles.has(id))).toEqual([]);
  expect(duplicatesIn(seen)).toEqual([]);
  // Every file there all along and never deleted is seen exactly once, oldest first.
  const steady = originals.map((f) => f.id).filter((id) => !deleted.has(id));
  expect(seen.filter((id) => steady.includes(id))).toEqual(steady);
}

async function denseSeq(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const busy = await alice.createSession({ title: 'busy', state: {} });
  const beside = await alice.createSession({ title: 'beside', state: {} });
  const [appended, besideAppended] = await Promise.all([
    Promise.all(range(1, 50).map((i) => alice.appendMessage(busy.id, message(`message ${i}`, { i })))),
    Promise.all(range(1, 20).map((i) => alice.appendMessage(beside.id, message(`beside ${i}`)))),
  ]);
  expect(appended.map((m) => m.seq).sort((a, b) => a - b)).toEqual(range(1, 50));
  expect(besideAppended.map((m) => m.seq).sort((a, b) => a - b)).toEqual(range(1, 20));

  // Pages of 7 give them back in seq order, each exactly as its append answered.
  const listed = await allMessages(alice, busy.id, 7);
  expect(listed.map((m) => m.seq)).toEqual(range(1, 50));
  expect(listed).toEqual([...appended].sort((a, b) => a.seq - b.seq));
  expect((await allMessages(alice, beside.id, 7)).map((m) => m.seq)).toEqual(range(1, 20));

  const next = await alice.appendMessage(busy.id, message('after the race'));
  expect(next.seq).toBe(51);
}

async function ifMatchLetsOneWin(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const session = await alice.createSession({ title: 'contended', state: {} });
  const outcomes = await Promise.allSettled(
    range(1, 50).map((i) => alice.updateSession(session.id, { state: { writer: i } }, ['"v1"'])),
  );
  const winners = fulfilled(outcomes);
  expect(winners.map((w) => w.version)).toEqual([2]);
  const losers = refusals(outcomes);
  expect(losers).toHaveLength(49);
  expect(losers.filter((r) => r.name !== 'PreconditionFailed' || r.status !== 412)).toEqual([]);
  const final = await alice.getSession(session.id);
  expect(final).toEqual(winners[0]);
  expect(final.version).toBe(2);
}

async function unconditionalUpdatesAllApply(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const session = await alice.createSession({ title: 'busy', state: {} });
  const outcomes = await Promise.allSettled(range(1, 50).map((i) => alice.updateSession(session.id, { state: { writer: i } }, undefined)));
  expect(refusals(outcomes)).toEqual([]);
  const updated = fulfilled(outcomes);
  expect(updated.map((u) => u.version).sort((a, b) => a - b)).toEqual(range(2, 51));
  const final = await alice.getSession(session.id);
  expect(final.version).toBe(51);
  expect(final).toEqual(updated.find((u) => u.version === 51));
  expect(await alice.usage()).toEqual({ sessions: 1, files: 0, bytes: jsonBytes(final) });
}

async function exactByteQuota(subject: ContractSubject): Promise<void> {
  const limit = 40_000;
  const alice = subject.store('alice', { limits: { bytes: limit } });
  const session = await alice.createSession({ title: 'quota', state: {} });
  // Together about 56 KB of files and 2 KB of messages, racing for about 40 KB.
  const files = range(0, 7).map((i) => textFile(`f${i}.txt`, Buffer.alloc(6000, 97 + i)));
  const uploads = files.map((f) => upload(alice, session.id, [f]));
  const appends = range(1, 10).map((i) => alice.appendMessage(session.id, message(`racing ${i}`, { pad: 'x'.repeat(100) })));
  const uploadOutcomes = await Promise.allSettled(uploads);
  const appendOutcomes = await Promise.allSettled(appends);

  const usage = await alice.usage();
  expect(usage.bytes).toBeLessThanOrEqual(limit);
  const refused = refusals([...uploadOutcomes, ...appendOutcomes]);
  expect(refused).toEqual(refused.map(() => quotaExceeded('USER_QUOTA_BYTES')));
  expect(refusals(uploadOutcomes).length).toBeGreaterThan(0);
  // Usage is exactly what is stored: nothing of the refused, nothing still held for them.
  expect(usage).toEqual(await chargeOfEverything(alice));
  expect((await allFiles(alice, session.id)).map((f) => f.id).sort()).toEqual(fulfilled(uploadOutcomes).flat().map((f) => f.id).sort());
  expect((await allMessages(alice, session.id)).map((m) => m.id).sort()).toEqual(fulfilled(appendOutcomes).map((m) => m.id).sort());

  // The quota is exact: a file one byte over the room is refused, one that fills it to the last byte fits.
  if (limit - usage.bytes <= FILE_OVERHEAD_BYTES) {
    const [someFile] = await allFiles(alice, session.id);
    await alice.deleteFile(session.id, someFile!.id);
  }
  const before = await alice.usage();
  const room = limit - before.bytes;
  const tooBig = textFile('too-big.txt', Buffer.alloc(room - FILE_OVERHEAD_BYTES + 1, 'y'));
  expect(await refusalOf(upload(alice, session.id, [tooBig]))).toEqual(quotaExceeded('USER_QUOTA_BYTES'));
  expect(await alice.usage()).toEqual(before);
  await upload(alice, session.id, [textFile('to-the-byte.txt', Buffer.alloc(room - FILE_OVERHEAD_BYTES, 'z'))]);
  expect((await alice.usage()).bytes).toBe(limit);
  // Full: whatever would add a byte is refused, whatever frees some still applies.
  expect(await refusalOf(alice.appendMessage(session.id, message('one more')))).toEqual(quotaExceeded('USER_QUOTA_BYTES'));
  expect(await refusalOf(upload(alice, session.id, [textFile('empty.txt', '')]))).toEqual(quotaExceeded('USER_QUOTA_BYTES'));
  expect(await refusalOf(alice.updateSession(session.id, { state: { grown: true } }, undefined))).toEqual(quotaExceeded('USER_QUOTA_BYTES'));
  expect(await refusalOf(alice.createSession({ title: 'one more', state: {} }))).toEqual(quotaExceeded('USER_QUOTA_BYTES'));
  const shrunk = await alice.updateSession(session.id, { title: 'q' }, undefined);
  expect((await alice.usage()).bytes).toBe(limit - (jsonBytes(session) - jsonBytes(shrunk)));
  expect(await alice.usage()).toEqual(await chargeOfEverything(alice));
}

async function sessionsLimit(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice', { limits: { sessions: 3 } });
  const outcomes = await Promise.allSettled(range(1, 6).map((i) => alice.createSession({ title: `racing ${i}`, state: {} })));
  expect(fulfilled(outcomes)).toHaveLength(3);
  expect(refusals(outcomes)).toEqual(range(1, 3).map(() => quotaExceeded('MAX_SESSIONS_PER_USER')));
  expect(await allSessions(alice)).toHaveLength(3);

  expect(await refusalOf(alice.createSession({ title: 'fourth', state: {} }))).toEqual(quotaExceeded('MAX_SESSIONS_PER_USER'));
  await alice.deleteSession(fulfilled(outcomes)[0]!.id);
  await alice.createSession({ title: 'in the freed place', state: {} });
  expect((await alice.usage()).sessions).toBe(3);
  expect(await alice.usage()).toEqual(await chargeOfEverything(alice));
}

async function filesPerSessionLimit(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice', { limits: { filesPerSession: 3 } });
  const session = await alice.createSession({ title: 'three files', state: {} });
  const outcomes = await Promise.allSettled(range(1, 6).map((i) => upload(alice, session.id, [textFile(`f${i}.txt`, `file ${i}`)])));
  expect(fulfilled(outcomes)).toHaveLength(3);
  expect(refusals(outcomes)).toEqual(range(1, 3).map(() => quotaExceeded('MAX_FILES_PER_SESSION')));
  expect(await allFiles(alice, session.id)).toHaveLength(3);

  // The limit is per session.
  const other = await alice.createSession({ title: 'other', state: {} });
  await upload(alice, other.id, [textFile('elsewhere.txt', 'elsewhere')]);

  // One place free: a request for two is refused whole, a request for one fits.
  await alice.deleteFile(session.id, fulfilled(outcomes)[0]![0]!.id);
  const two = [textFile('a.txt', 'a'), textFile('b.txt', 'b')];
  expect(await refusalOf(upload(alice, session.id, two))).toEqual(quotaExceeded('MAX_FILES_PER_SESSION'));
  expect(await allFiles(alice, session.id)).toHaveLength(2);
  await upload(alice, session.id, [textFile('c.txt', 'c')]);
  expect(await allFiles(alice, session.id)).toHaveLength(3);
  expect(await alice.usage()).toEqual(await chargeOfEverything(alice));
}

async function uploadsLeaveNothingUnlessCommitted(subject: ContractSubject): Promise<void> {
  const watched = watchedBlobs(subject.blobs);
  const alice = subject.store('alice', { blobs: watched.blobs });
  const keeper = await alice.createSession({ title: 'keeper', state: {} });
  const [kept] = await upload(alice, keeper.id, [textFile('kept.txt', 'kept')]);
  const committed = new Set([kept!.id]);
  const before = await alice.usage();

  // Aborted after its bytes were stored.
  const aborted = await alice.beginUpload(keeper.id);
  await aborted.addFile(streamOf(Buffer.alloc(5000, 'a')), { filename: 'aborted.txt', mimeType: 'text/plain' });
  await aborted.abort();

  // Refused for its declared type, for content that belies it, for being an executable, for quota.
  expect(await refusalOf(upload(alice, keeper.id, [{ name: 'app.exe', type: 'application/x-msdownload', data: Buffer.from('MZ') }]))).toMatchObject({
    name: 'UnsupportedMediaType',
    status: 415,
  });
  const fakePng = { name: 'fake.png', type: 'image/png', data: Buffer.from('not a png at all') };
  expect(await refusalOf(upload(alice, keeper.id, [textFile('fine.txt', 'fine'), fakePng]))).toMatchObject({ name: 'UnsupportedMediaType', status: 415 });
  const elf = textFile('notes.txt', Buffer.concat([ELF_HEAD, Buffer.alloc(200)]));
  expect(await refusalOf(upload(alice, keeper.id, [elf]))).toMatchObject({ name: 'UnsupportedMediaType', status: 415 });
  const tight = subject.store('alice', { blobs: watched.blobs, limits: { bytes: before.bytes + FILE_OVERHEAD_BYTES + 3000 } });
  const overQuota = [textFile('small.txt', 'small'), textFile('large.txt', Buffer.alloc(5000, 'l'))];
  expect(await refusalOf(upload(tight, keeper.id, overQuota))).toEqual(quotaExceeded('USER_QUOTA_BYTES'));

  expect((await allFiles(alice, keeper.id)).map((f) => f.id)).toEqual([kept!.id]);
  expect(await alice.usage()).toEqual(before);

  // Its session deleted before it commits: a 404, and nothing of it anywhere.
  const doomed = await alice.createSession({ title: 'doomed', state: {} });
  const orphan = await alice.beginUpload(doomed.id);
  await orphan.addFile(streamOf(Buffer.alloc(3000, 'o')), { filename: 'orphan.txt', mimeType: 'text/plain' });
  await alice.deleteSession(doomed.id);
  expect(await refusalOf(orphan.commit())).toEqual(notFound());
  expect(await alice.usage()).toEqual(before);

  // Not one of the refused files' bytes can be read (a put was attempted for most of them).
  const uncommitted = watched.refs.filter((ref) => !committed.has(ref.fileId));
  expect(uncommitted.length).toBeGreaterThanOrEqual(4);
  for (const ref of uncommitted) expect(await blobAt(subject.blobs, ref)).toBeNull();

  // A committed upload: listed in request order, readable with the exact bytes and hash.
  const sent = [textFile('one.txt', randomBytes(3000).toString('hex')), { name: 'two.png', type: 'image/png', data: Buffer.concat([PNG_SIGNATURE, randomBytes(9000)]) }];
  const stored = await upload(alice, keeper.id, sent);
  expect(stored.map((f) => ({ name: f.name, size: f.size, contentType: f.contentType, sha256: f.sha256 }))).toEqual(
    sent.map((f) => ({ name: f.name, size: f.data.length, contentType: f.type, sha256: sha256(f.data) })),
  );
  // As sets: within one request, which part a listing puts first is not this case's claim.
  const byId = (files: FileRecord[]) => [...files].sort((a, b) => a.id.localeCompare(b.id));
  expect(byId(await allFiles(alice, keeper.id))).toEqual(byId([kept!, ...stored]));
  for (const [i, record] of stored.entries()) {
    const bytes = await download(alice, keeper.id, record.id);
    expect(bytes.equals(sent[i]!.data)).toBe(true);
    expect(sha256(bytes)).toBe(record.sha256);
    expect(await blobAt(subject.blobs, { userId: 'alice', sessionId: keeper.id, fileId: record.id })).toEqual(sent[i]!.data);
  }
  expect(await alice.usage()).toEqual(await chargeOfEverything(alice));
}

async function rangesGiveExactBytes(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const session = await alice.createSession({ title: 'ranges', state: {} });
  // Larger than a typical stream chunk, so ranges cross chunk boundaries.
  const data = Buffer.concat([PNG_SIGNATURE, randomBytes(300_000)]);
  const [record] = await upload(alice, session.id, [{ name: 'big.png', type: 'image/png', data }]);
  const last = data.length - 1;
  const ranges = [
    { start: 0, end: 0 },
    { start: 1, end: 1 },
    { start: 65_530, end: 65_545 },
    { start: 1000, end: 250_000 },
    { start: last, end: last },
    { start: last - 99, end: last },
    { start: 0, end: last },
  ];
  for (const r of ranges) {
    const file = await alice.openFile(session.id, record!.id);
    expect(file.size).toBe(data.length);
    const bytes = await bytesOf(file.stream(r));
    expect({ range: r, length: bytes.length, same: bytes.equals(data.subarray(r.start, r.end + 1)) }).toEqual({
      range: r,
      length: r.end - r.start + 1,
      same: true,
    });
  }
  const whole = await alice.openFile(session.id, record!.id);
  expect(whole.record).toEqual(record);
  expect((await bytesOf(whole.stream())).equals(data)).toBe(true);

  // Opened and closed without being read: nothing is held, the file is still there.
  const unread = await alice.openFile(session.id, record!.id);
  await unread.close();
  expect((await download(alice, session.id, record!.id)).equals(data)).toBe(true);
}

async function eraseAllLeavesNothing(subject: ContractSubject): Promise<void> {
  const alice = subject.store('alice');
  const bob = subject.store('bob');
  const hers = [];
  for (const title of ['one', 'two', 'three']) hers.push(await populatedSession(alice, title));
  await alice.appendMessage(hers[0]!.session.id, message('second'));
  const his = await populatedSession(bob, 'his');
  const bobBefore = { usage: await bob.usage(), sessions: await allSessions(bob), messages: await allMessages(bob, his.session.id) };

  await alice.eraseAll();
  await subject.settle();

  expect(await allSessions(alice)).toEqual([]);
  expect(await alice.usage()).toEqual({ sessions: 0, files: 0, bytes: 0 });
  for (const { session, file } of hers) {
    expect(await refusalOf(alice.getSession(session.id))).toEqual(notFound());
    expect(await refusalOf(alice.openFile(session.id, file.id))).toEqual(notFound('No such file.'));
    expect(await subject.backend.findFile('alice', session.id, file.id)).toBeNull();
    expect(await blobAt(subject.blobs, { userId: 'alice', sessionId: session.id, fileId: file.id })).toBeNull();
  }

  expect({ usage: await bob.usage(), sessions: await allSessions(bob), messages: await allMessages(bob, his.session.id) }).toEqual(bobBefore);
  expect(await download(bob, his.session.id, his.file.id)).toEqual(his.data);

  // The user can start over.
  const fresh = await alice.createSession({ title: 'fresh', state: {} });
  expect(await allSessions(alice)).toEqual([summaryOf(fresh)]);
  expect(await alice.usage()).toEqual({ sessions: 1, files: 0, bytes: jsonBytes(fresh) });
}

/** Each key is the claim its case checks; each case expects fresh, empty storage. */
export const contractCases = {
  'a session is created, read, updated (version +1 and a later updatedAt each time) and deleted': sessionLifecycle,
  'a deleted or never-existing session or file is NotFound for every operation, the same either way': missingIsNotFound,
  "another user's session and files are NotFound for every operation, like missing ones, and stay untouched": otherUsersDataIsNotFound,
  'paging sessions while others are created and updated shows every untouched session exactly once and none twice': sessionPagesUnderWrites,
  'paging files while others are uploaded and deleted shows every remaining file exactly once and none twice': filePagesUnderWrites,
  '50 racing appends to one session get seq 1..50, each once, listed in order': denseSeq,
  'of 50 racing updates with the same If-Match exactly one wins, the rest are PreconditionFailed': ifMatchLetsOneWin,
  '50 racing unconditional updates all apply: the version ends at 51': unconditionalUpdatesAllApply,
  'racing uploads and appends never pass the byte quota, which is exact to the byte, and usage is what is stored': exactByteQuota,
  'the sessions limit refuses the session after the last one, even when creates race': sessionsLimit,
  'files beyond filesPerSession are refused, even when uploaded concurrently': filesPerSessionLimit,
  'an aborted or refused upload, or one whose session went, leaves no record, no bytes and no usage; a committed one is exact': uploadsLeaveNothingUnlessCommitted,
  'a range of a file gives exactly those bytes: the first, the middle, the last and the whole': rangesGiveExactBytes,
  "erasing a user leaves nothing of theirs and touches nobody else's": eraseAllLeavesNothing,
} satisfies Record<string, ContractCase>;

export type ContractClaim = keyof typeof contractCases;

/** Registers the suite for one backend: every case on fresh storage that `open` provides and `close` removes. */
export function describeStorageContract(name: string, open: () => Promise<OpenedContractSubject>): void {
  describe(`the storage contract on ${name}`, () => {
    let subject: OpenedContractSubject | undefined;
    beforeEach(async () => {
      subject = await open();
    }, OPEN_TIMEOUT_MS);
    afterEach(async () => {
      const opened = subject;
      subject = undefined;
      await opened?.close();
    }, OPEN_TIMEOUT_MS);

    for (const [claim, run] of Object.entries(contractCases)) {
      it(
        claim,
        async () => {
          if (!subject) throw new Error(`${name}: storage did not open`);
          await run(subject);
        },
        CASE_TIMEOUT_MS,
      );
    }
  });
}
