/**
 * The request schemas, also the source of the OpenAPI document. Bodies are strict: an unknown property is a 400, never stored.
 * Query strings are read leniently (unknown parameters are ignored, as HTTP caches and
 * proxies sometimes add their own) but every parameter we use is validated.
 */
import { z } from 'zod';
import type { JsonObject } from '../storage/session-store';

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

export const titleSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .refine((t) => !CONTROL_CHARACTERS.test(t), 'must not contain control characters');

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
