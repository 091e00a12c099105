/**
 * The shape a parsed JSON body may have: nested at most `maxDepth` levels, every number finite.
 *
 * Why a walk of its own, and why without recursion: V8's JSON.parse is iterative, so a body of
 * 5,000 or 200,000 nested arrays parses fine, but everything after it that recurses (a size
 * check through JSON.stringify, zod, the store's own serialization) overflows the call stack
 * with a RangeError: a 500 for the client, and work the process should never have started.
 * This walk keeps its own stack on the heap, stops at the first level past the limit, and so
 * costs O(size of the body) at worst whatever its nesting. It also finds numbers JSON.parse
 * turned into Infinity (`1e999`), which JSON.stringify would silently store as `null`.
 */

export type JsonShapeProblem =
  | { kind: 'too-deep'; maxDepth: number }
  | { kind: 'non-finite'; path: string };

interface Frame {
  value: object;
  /** 1 for the body itself, 2 for what it holds, ... */
  depth: number;
  parent: Frame | undefined;
  key: string;
}

/** Path of a member, as `state.a.0.b` (the form the schema errors use), bounded in length. */
const MAX_PATH_LENGTH = 120;

function pathOf(frame: Frame, key: string): string {
  const keys = [key];
  for (let f: Frame | undefined = frame; f?.parent !== undefined; f = f.parent) keys.push(f.key);
  const path = keys.reverse().join('.');
  return path.length > MAX_PATH_LENGTH ? `${path.slice(0, MAX_PATH_LENGTH)}...` : path;
}

/**
 * The first problem found in `body` (a value straight from JSON.parse), or null. The body itself
 * is level 1: with `maxDepth` 2, `{"state":{}}` passes and `{"state":{"a":[]}}` does not.
 */
export function jsonShapeProblem(body: unknown, maxDepth: number): JsonShapeProblem | null {
  if (typeof body === 'number') return Number.isFinite(body) ? null : { kind: 'non-finite', path: 'body' };
  if (typeof body !== 'object' || body === null) return null;
  if (maxDepth < 1) return { kind: 'too-deep', maxDepth };
  const stack: Frame[] = [{ value: body, depth: 1, parent: undefined, key: '' }];
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    const array = Array.isArray(frame.value) ? (frame.value as unknown[]) : undefined;
    const object = frame.value as Record<string, unknown>;
    // Own enumerable members only. JSON.parse makes a `"__proto__"` key an own data property,
    // which shadows the accessor, so it is read and walked like any other key.
    const keys = array ? undefined : Object.keys(object);
    const length = array ? array.length : keys!.length;
    for (let i = 0; i < length; i += 1) {
      const member = array ? array[i] : object[keys![i]!];
      if (typeof member === 'number') {
        if (!Number.isFinite(member)) return { kind: 'non-finite', path: pathOf(frame, keys ? keys[i]! : String(i)) };
      } else if (typeof member === 'object' && member !== null) {
        // Refused as soon as one container would sit past the limit: nothing deeper is visited.
        if (frame.depth + 1 > maxDepth) return { kind: 'too-deep', maxDepth };
        stack.push({ value: member, depth: frame.depth + 1, parent: frame, key: keys ? keys[i]! : String(i) });
      }
    }
  }
  return null;
}
