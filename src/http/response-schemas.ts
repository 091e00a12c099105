/**
 * The shapes this service answers with, as zod schemas. They feed the OpenAPI document, and
 * the test suite checks every real response against that document, so a change to what a
 * route returns that is not made here fails a test.
 */
import { z } from 'zod';
import { MESSAGE_ROLES, stateSchema } from './schemas';

const id = z.uuid();
const timestamp = z.iso.datetime();

export const sessionSummary = z
  .object({
    id,
    title: z.string(),
    createdAt: timestamp,
    updatedAt: timestamp,
    version: z.int().min(0).describe('Grows by one on every change; 0 only for a damaged session.'),
    damaged: z
      .literal(true)
      .optional()
      .describe('The stored session cannot be read back: every request for it answers /problems/session-damaged (500) except DELETE.'),
  })
  .meta({ id: 'SessionSummary' });

export const session = sessionSummary.extend({ state: stateSchema }).meta({ id: 'Session' });

export const sessionPage = z
  .object({ items: z.array(sessionSummary), nextCursor: z.string().nullable() })
  .meta({ id: 'SessionPage' });

export const message = z
  .object({
    id,
    seq: z.int().min(1),
    role: z.enum(MESSAGE_ROLES),
    content: z.string(),
    metadata: stateSchema,
    createdAt: timestamp,
  })
  .meta({ id: 'Message' });

export const messagePage = z
  .object({ items: z.array(message), nextCursor: z.int().nullable() })
  .meta({ id: 'MessagePage' });

export const file = z
  .object({
    id,
    name: z.string().min(1).max(200),
    size: z.int().min(0),
    contentType: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    createdAt: timestamp,
  })
  .meta({ id: 'File' });

export const fileList = z.object({ items: z.array(file) }).meta({ id: 'FileList' });

export const filePage = z
  .object({ items: z.array(file), nextCursor: z.string().nullable() })
  .meta({ id: 'FilePage' });

export const me = z
  .object({
    userId: z.string(),
    usage: z.object({
      sessions: z.int().min(0),
      files: z.int().min(0),
      bytes: z.int().min(0).describe('Everything charged: documents, message logs, and each file\'s bytes plus fileOverheadBytes.'),
    }),
    limits: z.object({
      sessions: z.int(),
      bytes: z.int(),
      stateBytes: z.int(),
      messageBytes: z.int(),
      uploadBytes: z.int(),
      filesPerUpload: z.int(),
      filesPerSession: z.int(),
      fileOverheadBytes: z.int().describe('What each stored file is charged on top of its bytes.'),
      uploadTypes: z.array(z.string()),
    }),
  })
  .meta({ id: 'Me' });

export const problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.int().min(400).max(599),
    detail: z.string(),
    requestId: z.string(),
    limit: z.string().optional().meta({ description: 'the configuration variable whose limit was hit' }),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });

export const health = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

export const readiness = z.object({ status: z.enum(['ready', 'not ready']) }).meta({ id: 'Readiness' });
