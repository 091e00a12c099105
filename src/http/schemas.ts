/**
 * The request schemas, also the source of the OpenAPI document. Bodies are strict: an unknown property is a 400, never stored.
 * Query strings are read leniently (unknown parameters are ignored, as HTTP caches and
 * proxies sometimes add their own) but every parameter we use is validated.
 */
import { z } from 'zod';
import type { JsonObject } from '../sessions/session-store';

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
/**
 * Invisible characters that change how the text around them is shown: bidirectional
 * embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), the Arabic letter mark
 * (U+061C), the left-to-right and right-to-left marks (U+200E, U+200F), and the line and
 * paragraph separators (U+2028, U+2029). In a title another part of a UI shows, they can make
 * it read as something else ("invoice\u202Etxt.exe") or break the line it sits on.
 */
const INVISIBLE_LAYOUT_CHARACTERS = /[\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const TITLE_CHARACTERS_MESSAGE =
  'must not contain control characters, invisible direction controls (U+202A-U+202E, U+2066-U+2069, U+061C, U+200E, U+200F) or line/paragraph separators (U+2028, U+2029)';

export const titleSchema = z
  .string()
  // Before trimming: trim() would quietly drop a separator at either end instead of refusing it.
  .refine((t) => !INVISIBLE_LAYOUT_CHARACTERS.test(t), { message: TITLE_CHARACTERS_MESSAGE, abort: true })
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .refine((t) => !CONTROL_CHARACTERS.test(t), TITLE_CHARACTERS_MESSAGE);

/**
 * Any JSON object. The body already came through JSON.parse, so only the top level is
 * checked, and the parsed object is kept as it is: rebuilding it key by key would turn a
 * `"__proto__"` key into a prototype instead of storing it as data.
 */
export const stateSchema = z
  .custom<JsonObject>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'must be a JSON object')
  .meta({ type: 'object', description: 'any JSON object' });

export const createSessionBody = z.strictObject({
  title: titleSchema.optional(),
  state: stateSchema.optional(),
});

export const updateSessionBody = z
  .strictObject({
    title: titleSchema.optional(),
    state: stateSchema.optional(),
  })
  .refine((b) => b.title !== undefined || b.state !== undefined, 'give title, state or both');

export const MESSAGE_ROLES = ['user', 'assistant', 'system', 'tool'] as const;

export const appendMessageBody = z.strictObject({
  role: z.enum(MESSAGE_ROLES),
  content: z.string(),
  metadata: stateSchema.optional(),
});

function pageLimit(defaultValue: number, max: number) {
  return z
    .string()
    .regex(/^\d{1,4}$/, 'must be a whole number')
    .optional()
    .transform((v) => (v === undefined ? defaultValue : Number(v)))
    .pipe(z.number().int().min(1, 'must be at least 1').max(max, `must be at most ${max}`));
}

export const listSessionsQuery = z.object({
  limit: pageLimit(20, 100),
  cursor: z.string().max(512).optional(),
});

export const listMessagesQuery = z.object({
  limit: pageLimit(50, 200),
  after: z
    .string()
    .regex(/^\d{1,15}$/, 'must be a message seq')
    .optional()
    .transform((v) => (v === undefined ? 0 : Number(v))),
});

export const listFilesQuery = z.object({
  limit: pageLimit(100, 1000),
  cursor: z.string().max(512).optional(),
});
