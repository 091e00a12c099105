/**
 * The flat filesystem blob store (BLOB_STORE=fs beside PostgreSQL): the BlobStore contract on
 * a temp data directory, then what is its own: where bytes land and with what modes, staging
 * cleared at startup, ids that are not ids, and links planted where its directories belong.
 */
import { lstat, mkdir, readdir, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { AppError, StorageFault } from '../../../src/errors';
import { newObjectId } from '../../../src/sessions/ids';
import type { BlobRef } from '../../../src/sessions/ports';
import { FlatFsBlobStore } from '../../../src/storage/fs/flat-blob-store';
import { makeTempDir } from '../../helpers/temp-dir';
import { describeBlobStoreContract } from '../blob-store-contract';

/** The data directory as the service resolves it: absolute, with no link in it. */
async function dataDirectory(): Promise<string> {
  return realpath(await makeTempDir('session-vault-blobs-'));
}

/** Everything under blobs/ and blobs/.staging/ except the staging directory itself. */
async function entries(root: string): Promise<string[]> {
  const list = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).map((name) => path.join(dir, name));
  const blobs = path.join(root, 'blobs');
  const staging = path.join(blobs, '.staging');
  return [...(await list(blobs)).filter((entry) => entry !== staging), ...(await list(staging))]
    .map((entry) => path.relative(root, entry))
    .sort();
}

describeBlobStoreContract('flat filesystem', async () => {
  const root = await dataDirectory();
  return {
    blobs: new FlatFsBlobStore(root),
    close: () => rm(root, { recursive: true, force: true }),
    leftovers: () => entries(root),
  };
});

describe('flat filesystem blob store', () => {
  let root: string;
  let blobs: FlatFsBlobStore;

  beforeEach(async () => {
    root = await dataDirectory();
    blobs = new FlatFsBlobStore(root);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const ref = (fileId = newObjectId()): BlobRef => ({ userId: 'alice', sessionId: newObjectId(), fileId });

  test('bytes land at blobs/<file id>, readable by the owner only, in directories it creates 0700', async () => {
    const r = ref();
    await blobs.put(r, Readable.from([Buffer.from('hello')]));
    expect(await entries(root)).toEqual([`blobs/${r.fileId}`]);
    expect((await stat(path.join(root, 'blobs', r.fileId))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(root, 'blobs'))).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(root, 'blobs', '.staging'))).mode & 0o777).toBe(0o700);
  });

  test('clearStaging removes interrupted puts, keeps stored blobs, and is fine with no staging directory', async () => {
    expect(await blobs.clearStaging()).toBe(0);
    const kept = ref();
    await blobs.put(kept, Readable.from([Buffer.from('kept')]));
    await writeFile(path.join(root, 'blobs', '.staging', newObjectId()), 'torn');
    await writeFile(path.join(root, 'blobs', '.staging', newObjectId()), 'torn too');
    expect(await blobs.clearStaging()).toBe(2);
    expect(await entries(root)).toEqual([`blobs/${kept.fileId}`]);
  });

  test('ready while a blob can be staged (leaving no probe behind), not while staging is unusable, and again once it is', async () => {
    expect(await blobs.ready()).toBe(true);
    expect(await entries(root)).toEqual([]);
    await rm(path.join(root, 'blobs', '.staging'), { recursive: true });
    await writeFile(path.join(root, 'blobs', '.staging'), 'not a directory');
    expect(await blobs.ready()).toBe(false);
    await rm(path.join(root, 'blobs', '.staging'));
    expect(await blobs.ready()).toBe(true);
  });

  test('a file id that is not a server-generated id is a programming error, and nothing is created', async () => {
    const source = Readable.from([Buffer.from('x')]);
    const putting = blobs.put(ref('../escape'), source);
    await expect(putting).rejects.toThrow('invalid file id');
    await expect(putting).rejects.not.toBeInstanceOf(AppError);
    expect(source.destroyed).toBe(true);
    await expect(blobs.open(ref('not-an-id'))).rejects.toThrow('invalid file id');
    await expect(blobs.delete(ref('/etc/passwd'))).rejects.toThrow('invalid file id');
    expect(await readdir(root)).toEqual([]);
  });

  test('a data directory given as a relative path is refused', () => {
    expect(() => new FlatFsBlobStore('data')).toThrow('absolute');
  });

  test('a link where blobs/ belongs is refused as a StorageFault; the put releases its source and writes nothing there', async () => {
    const elsewhere = path.join(root, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, path.join(root, 'blobs'));
    const source = Readable.from([Buffer.from('secret')]);
    await expect(blobs.put(ref(), source)).rejects.toBeInstanceOf(StorageFault);
    expect(source.destroyed).toBe(true);
    await expect(blobs.open(ref())).rejects.toBeInstanceOf(StorageFault);
    await expect(blobs.delete(ref())).rejects.toBeInstanceOf(StorageFault);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  test('a link planted where a blob belongs is never followed', async () => {
    const r = ref();
    await blobs.put(ref(), Readable.from([Buffer.from('creates the directories')]));
    await writeFile(path.join(root, 'outside'), 'not a blob');
    await symlink(path.join(root, 'outside'), path.join(root, 'blobs', r.fileId));
    await expect(blobs.open(r)).rejects.toBeInstanceOf(StorageFault);
    await blobs.delete(r);
    // The link is gone, what it pointed at is not.
    await expect(lstat(path.join(root, 'blobs', r.fileId))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await stat(path.join(root, 'outside'))).isFile()).toBe(true);
  });
});
