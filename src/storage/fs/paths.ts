/**
 * The one place where an id becomes a path.
 *
 * Every identifier that reaches the filesystem is validated here (by the rules of
 * sessions/ids.ts), and every path is built
 * here and checked to lie inside the user's own directory. The user id is encoded into its
 * directory name injectively and case-safely, so two different users never share a
 * directory even on a case-insensitive filesystem.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { isValidObjectId, isValidUserId } from '../../sessions/ids';

/**
 * `[a-z0-9-]` stands for itself; every other allowed character becomes `_` and two hex
 * digits. `_` is itself escaped, so decoding is unambiguous (injective), upper case never
 * reaches the filesystem (case-safe), and the name never starts with a dot.
 */
export function userDirectoryName(userId: string): string {
  if (!isValidUserId(userId)) throw new Error('invalid user id');
  let name = '';
  for (const ch of userId) {
    name += /[a-z0-9-]/.test(ch) ? ch : `_${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
  }
  return name;
}

/**
 * `child` is a path.join of `parent` and more: normalized, so it lies inside `parent` exactly
 * when it starts with `parent` and a separator. (A string test: this runs several times for
 * every storage call.)
 */
function assertInside(parent: string, child: string): string {
  if (child.length <= parent.length + 1 || !child.startsWith(parent) || child[parent.length] !== path.sep) {
    throw new Error('path escapes its parent');
  }
  return child;
}

export const SESSION_DOCUMENT = 'session.json';
export const MESSAGE_LOG = 'messages.jsonl';
export const FILE_LIST = 'files.json';
export const FILE_JOURNAL = 'files.jsonl';
export const FILES_DIR = 'files';
export const CURSOR_KEY = '.cursor-key';
export const SUMMARIES_DIR = 'summaries';
/** A user's listing summary is `<user dir name>.json` in `summaries/`. */
export const SUMMARY_SUFFIX = '.json';

/** Paths under one data directory. `root` must already be absolute and free of symlinks. */
export class DataPaths {
  readonly sessionsRoot: string;
  readonly staging: string;
  readonly cursorKey: string;
  /** Beside `sessions/`, never inside it: a user directory holds only session directories. */
  readonly summariesDir: string;

  constructor(readonly root: string) {
    if (!path.isAbsolute(root)) throw new Error('data root must be absolute');
    this.sessionsRoot = path.join(root, 'sessions');
    this.staging = path.join(root, '.staging');
    this.cursorKey = path.join(root, CURSOR_KEY);
    this.summariesDir = path.join(root, SUMMARIES_DIR);
  }

  userDir(userId: string): string {
    return assertInside(this.sessionsRoot, path.join(this.sessionsRoot, userDirectoryName(userId)));
  }

  sessionDir(userId: string, sessionId: string): string {
    if (!isValidObjectId(sessionId)) throw new Error('invalid session id');
    const userDir = this.userDir(userId);
    return assertInside(userDir, path.join(userDir, sessionId));
  }

  /**
   * Many sessions' directories at once (a summary's check): the user's directory is built
   * once, and a valid id (a UUID: no separator, no dot) is appended without path.join's
   * normalizing, which would cost more than the lstat each path is built for.
   */
  sessionDirs(userId: string, sessionIds: readonly string[]): string[] {
    const userDir = this.userDir(userId);
    return sessionIds.map((sessionId) => {
      if (!isValidObjectId(sessionId)) throw new Error('invalid session id');
      return assertInside(userDir, `${userDir}${path.sep}${sessionId}`);
    });
  }

  sessionFile(
    userId: string,
    sessionId: string,
    name: typeof SESSION_DOCUMENT | typeof MESSAGE_LOG | typeof FILE_LIST | typeof FILE_JOURNAL | typeof FILES_DIR,
  ): string {
    const dir = this.sessionDir(userId, sessionId);
    return assertInside(dir, path.join(dir, name));
  }

  /** An uploaded file's bytes, named by its server-generated id only. */
  fileBlob(userId: string, sessionId: string, fileId: string): string {
    if (!isValidObjectId(fileId)) throw new Error('invalid file id');
    const dir = this.sessionFile(userId, sessionId, FILES_DIR);
    return assertInside(dir, path.join(dir, fileId));
  }

  /**
   * The user's listing summary (user-summary.ts): named by the same injective, case-safe
   * encoding as the user's directory, so two users never share one.
   */
  summaryFile(userId: string): string {
    return assertInside(this.summariesDir, path.join(this.summariesDir, `${userDirectoryName(userId)}${SUMMARY_SUFFIX}`));
  }

  /** A fresh name in the staging directory, on the same filesystem as every target. */
  stagingEntry(): string {
    return assertInside(this.staging, path.join(this.staging, randomUUID()));
  }

  /** Where an upload's bytes wait, named by the file's id, until the file list commits them. */
  stagedBlob(fileId: string): string {
    if (!isValidObjectId(fileId)) throw new Error('invalid file id');
    return assertInside(this.staging, path.join(this.staging, `upload-${fileId}`));
  }
}
