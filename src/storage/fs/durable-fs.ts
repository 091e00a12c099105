/**
 * Filesystem primitives with the durability and symlink rules of the storage layout.
 *
 * - A file is replaced by writing a staging file, fsyncing it, renaming it over the target
 *   and fsyncing the target's directory: after a crash a reader finds the old content or the
 *   new, never a torn mix.
 * - Nothing here follows a symbolic link: files are opened with O_NOFOLLOW and directories
 *   are checked with realpath against the path the layout expects.
 */
import { close, constants, fstat, fsync, ftruncate, open, promises as fs, readFile, write } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { StorageIntegrityError } from './fs-errors';
import { fsObserver, secondsSince } from './fs-observer';

// Descriptor calls for the paths every read, PATCH and message takes: a plain fd costs less
// per call than a FileHandle, which is an object with a finalizer for the GC to track.
const openFd = promisify(open);
export const closeFd = promisify(close);
export const fstatFd = promisify(fstat);
const fsyncFd = promisify(fsync);
const writeFd = promisify(write);
const readFileFd = promisify(readFile);
const ftruncateFd = promisify(ftruncate);

/** Runs `work` on a descriptor of `file` opened with `flags`, and closes it whatever happens. */
async function withDescriptor<T>(file: string, flags: number, work: (fd: number) => Promise<T>): Promise<T> {
  const fd = await openFd(file, flags, 0o600);
  try {
    return await work(fd);
  } finally {
    await closeFd(fd);
  }
}

async function writeAll(fd: number, data: string | Buffer): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await writeFd(fd, bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

// Non-blocking so that a FIFO planted where a file belongs is refused at once instead of
// holding a thread (and the user's requests) for ever; no effect on regular files.
const READ_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
export const CREATE_NOFOLLOW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const APPEND_NOFOLLOW = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

export function isErrno(error: unknown, ...codes: string[]): boolean {
  // Not `instanceof Error`: errors from another realm (a test VM, a worker) fail that check.
  const code = typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' && codes.includes(code);
}

/** Makes a directory's entries (a rename, a new file) durable. */
export function fsyncDirectory(dir: string): Promise<void> {
  return withDescriptor(dir, constants.O_RDONLY | constants.O_DIRECTORY, fsyncFd);
}

/**
 * True when `dir` is a real directory at exactly that path; false when it does not exist.
 * A symbolic link anywhere in it is an integrity error: the layout never creates one.
 */
export async function isRealDirectory(dir: string): Promise<boolean> {
  let resolved: string;
  try {
    resolved = await fs.realpath(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return false;
    throw error;
  }
  if (resolved !== dir) throw new StorageIntegrityError(`symbolic link in ${path.basename(dir)}`);
  const stat = await fs.lstat(dir);
  if (!stat.isDirectory()) throw new StorageIntegrityError(`not a directory: ${path.basename(dir)}`);
  return true;
}

/** Creates `dir` (one level) if missing and makes the new entry durable. */
export async function ensureDirectory(dir: string): Promise<void> {
  if (await isRealDirectory(dir)) return;
  try {
    await fs.mkdir(dir, { mode: 0o700 });
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
  }
  if (!(await isRealDirectory(dir))) throw new StorageIntegrityError('directory vanished while created');
  await fsyncDirectory(path.dirname(dir));
}

/**
 * Opens a file for reading without following a final symbolic link: a descriptor, or null
 * when the file does not exist. The caller closes it.
 */
export async function openNoFollow(file: string): Promise<number | null> {
  let fd: number;
  try {
    fd = await openFd(file, READ_NOFOLLOW);
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return null;
    if (isErrno(error, 'ELOOP')) throw new StorageIntegrityError(`symbolic link at ${path.basename(file)}`);
    throw error;
  }
  // Only a regular file is ours: a directory, FIFO, socket or device is something planted.
  if (!(await fstatFd(fd)).isFile()) {
    await closeFd(fd);
    throw new StorageIntegrityError(`not a regular file: ${path.basename(file)}`);
  }
  return fd;
}

/** Reads a file without following a final symbolic link; null when it does not exist. */
export async function readFileNoFollow(file: string): Promise<Buffer | null> {
  const fd = await openNoFollow(file);
  if (fd === null) return null;
  try {
    return await readFileFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/** Writes `data` to a new file (never an existing one) and fsyncs it. */
export async function writeNewFileDurably(file: string, data: string | Buffer): Promise<void> {
  const observer = fsObserver();
  const started = observer ? performance.now() : 0;
  await writeNewFile(file, data);
  observer?.durableWrite(secondsSince(started));
}

function writeNewFile(file: string, data: string | Buffer): Promise<void> {
  return withDescriptor(file, CREATE_NOFOLLOW, async (fd) => {
    await writeAll(fd, data);
    await fsyncFd(fd);
  });
}

/**
 * Writes `data` to a new file (never an existing one) without an fsync. For caches only (a
 * listing summary): what a crash tears or loses there is found invalid and rebuilt from the
 * data it describes, so durability would cost a disk flush and buy nothing.
 */
export function writeNewCacheFile(file: string, data: string | Buffer): Promise<void> {
  return withDescriptor(file, CREATE_NOFOLLOW, (fd) => writeAll(fd, data));
}

/** Atomically replaces `target` with `data` through `stagingFile` (same filesystem). */
export async function replaceFileAtomically(stagingFile: string, target: string, data: string | Buffer): Promise<void> {
  const observer = fsObserver();
  const started = observer ? performance.now() : 0;
  try {
    await writeNewFile(stagingFile, data);
    await fs.rename(stagingFile, target);
  } catch (error) {
    await fs.rm(stagingFile, { force: true });
    throw error;
  }
  await fsyncDirectory(path.dirname(target));
  observer?.durableWrite(secondsSince(started));
}

/**
 * Appends `data` and returns only after it is on disk. Creates the file if needed. When the
 * write or the fsync fails (a full disk), what it may have written is cut off again, so the
 * next append never follows a partial one.
 */
export async function appendDurably(file: string, data: string | Buffer): Promise<void> {
  try {
    await withDescriptor(file, APPEND_NOFOLLOW, async (fd) => {
      const { size } = await fstatFd(fd);
      try {
        await writeAll(fd, data);
        const observer = fsObserver();
        const started = observer ? performance.now() : 0;
        await fsyncFd(fd);
        observer?.appendFsync(secondsSince(started));
      } catch (error) {
        await ftruncateFd(fd, size).catch(() => undefined);
        throw error;
      }
    });
  } catch (error) {
    if (isErrno(error, 'ELOOP')) throw new StorageIntegrityError(`symbolic link at ${path.basename(file)}`);
    throw error;
  }
}

export async function truncateFile(file: string, length: number): Promise<void> {
  const handle = await fs.open(file, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Size of a regular file (not followed if a link); 0 when missing. */
export async function fileSize(file: string): Promise<number> {
  try {
    const stat = await fs.lstat(file);
    return stat.isFile() ? stat.size : 0;
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return 0;
    throw error;
  }
}

/**
 * Removes a directory tree in a way no concurrent reader can half-see: it is first renamed
 * into the staging area (atomic), then deleted there. A crash in between leaves only a
 * staging leftover, which startup removes.
 */
export async function removeTreeAtomically(dir: string, stagingEntry: string): Promise<boolean> {
  try {
    await fs.rename(dir, stagingEntry);
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return false;
    throw error;
  }
  await fsyncDirectory(path.dirname(dir));
  await fs.rm(stagingEntry, { recursive: true, force: true });
  return true;
}

export async function listDirectories(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

export { fs };
