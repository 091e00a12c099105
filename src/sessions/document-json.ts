/**
 * A session document's JSON, serialized once per document object. Documents are immutable
 * values once made (a change makes a new one), and the filesystem backend hands the same
 * object to every read until the session changes, so the bytes it writes to disk are the
 * bytes every later read of that document is answered with: a PATCH serializes its result
 * once, for the file and the response, and a session read over and over is not serialized
 * again. A backend that builds a new object per read costs one serialization per read, as
 * before.
 */
import type { SessionDocument } from './ports';

// Weak: the bytes live exactly as long as their document (in a backend's cache, or a request).
const serialized = new WeakMap<SessionDocument, Buffer>();

export function documentJson(document: SessionDocument): Buffer {
  let bytes = serialized.get(document);
  if (bytes === undefined) {
    bytes = Buffer.from(JSON.stringify(document), 'utf8');
    serialized.set(document, bytes);
  }
  return bytes;
}
