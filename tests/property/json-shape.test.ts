/**
 * jsonShapeProblem against a plain recursive definition on generated values, and on
 * nesting far deeper than any recursion could take.
 */
import fc from 'fast-check';
import { jsonShapeProblem } from '../../src/http/json-shape';

/** The body is level 1; each array or object inside adds one. Scalars add nothing. */
function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  const members = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...members.map(depthOf));
}

function hasNonFinite(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value);
  if (typeof value !== 'object' || value === null) return false;
  return (Array.isArray(value) ? value : Object.values(value)).some(hasNonFinite);
}

/** JSON values as JSON.parse gives them, with Infinity and -Infinity among the numbers. */
const value = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(fc.double({ noNaN: true }), fc.constantFrom(Infinity, -Infinity, 0, -0, 1e308), fc.string({ maxLength: 4 }), fc.boolean(), fc.constant(null)),
    fc.array(tie('v'), { maxLength: 4 }),
    // Parsed from text, so that a "__proto__" key is an own property, as the service sees it.
    fc.dictionary(fc.constantFrom('a', 'b', '__proto__', 'constructor', '0'), tie('v'), { maxKeys: 3 }).map((o) => JSON.parse(JSON.stringify(o)) as unknown),
  ),
})).v;

describe('jsonShapeProblem', () => {
  it('agrees with the recursive definition of depth and finiteness', () => {
    fc.assert(
      fc.property(value, fc.integer({ min: 1, max: 8 }), (v, maxDepth) => {
        const problem = jsonShapeProblem(v, maxDepth);
        const tooDeep = depthOf(v) > maxDepth;
        const nonFinite = hasNonFinite(v);
        if (!tooDeep && !nonFinite) expect(problem).toBeNull();
        else if (tooDeep && !nonFinite) expect(problem).toEqual({ kind: 'too-deep', maxDepth });
        else if (nonFinite && !tooDeep) expect(problem).toMatchObject({ kind: 'non-finite' });
        else expect(problem).not.toBeNull();
      }),
      { numRuns: 2000 },
    );
  });

  it('reports the path of a non-finite number as the schema errors would', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('a', 'b', '0', '__proto__'), { minLength: 1, maxLength: 5 }), (keys) => {
        const text = keys.reduceRight((inner, key) => `{${JSON.stringify(key)}:${inner}}`, '1e999');
        expect(jsonShapeProblem(JSON.parse(text), 64)).toEqual({ kind: 'non-finite', path: keys.join('.') });
      }),
    );
  });

  it('handles nesting of any depth without recursion, quickly', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(1, 63, 64, 65), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 50_000, max: 100_000 })), fc.boolean(), (depth, arrays) => {
        const text = arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"k":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
        const parsed: unknown = JSON.parse(text);
        const started = Date.now();
        const problem = jsonShapeProblem(parsed, 64);
        expect(Date.now() - started).toBeLessThan(500);
        expect(problem).toEqual(depth > 64 ? { kind: 'too-deep', maxDepth: 64 } : null);
      }),
      { numRuns: 20 },
    );
  });
});
