/**
 * The OpenAPI 3.1 document served at `/openapi.json`, generated from the zod schemas that
 * validate requests (`schemas.ts`) and describe responses (`response-schemas.ts`). The test
 * suite sends real requests to every route and checks each answer against this document.
 */
import { z } from 'zod';
import * as out from './response-schemas';
import { appendMessageBody, createSessionBody, listFilesQuery, listMessagesQuery, listSessionsQuery, updateSessionBody } from './schemas';

type JsonSchema = Record<string, unknown>;

type Reply =
  | { json: z.ZodType; headers?: string[]; description: string }
  | { bytes: true; headers?: string[]; description: string }
  | { empty: true; headers?: string[]; description: string };

interface Operation {
  method: 'get' | 'head' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  public?: boolean;
  session?: boolean;
  query?: z.ZodObject;
  body?: z.ZodType | 'multipart';
  bodyOptional?: boolean;
  requestHeaders?: string[];
  replies: Record<number, Reply>;
}

const PROBLEM_STATUSES: Record<number, string> = {
  400: 'Malformed input; `detail` says what.',
  401: 'Missing, invalid or expired bearer token.',
  404: "No such session or file (another user's, deleted, never existed: all alike).",
  412: '`If-Match` does not match the current ETag.',
  413: 'A size limit was hit; `limit` names it.',
  415: 'Wrong media type, or a file whose type is not allowed or whose bytes do not match it.',
  416: 'The range starts past the end of the file.',
  429: 'Rate limited; see `Retry-After`.',
  500: 'Unexpected failure; the body says nothing more.',
  503: 'Not ready, or something the request needs (the database, the rate-limit store with `RATE_LIMIT_ON_STORE_ERROR=deny`, the identity provider\'s keys with `JWT_JWKS_UNAVAILABLE=503`) cannot be reached right now; see `Retry-After` when given.',
  507: 'A quota (`limit` names it) or the disk is full; nothing was changed.',
};

const HEADERS: Record<string, { description: string; schema: JsonSchema }> = {
  ETag: { description: 'Entity tag of the returned representation.', schema: { type: 'string' } },
  Location: { description: 'URL of the created resource.', schema: { type: 'string' } },
  'Content-Disposition': { description: 'Always `attachment`, with `filename` and `filename*`.', schema: { type: 'string' } },
  'Content-Range': { description: '`bytes start-end/size`, or `bytes */size` with 416.', schema: { type: 'string' } },
  'Retry-After': { description: 'Seconds until the rate limit resets.', schema: { type: 'integer' } },
  'If-Match': { description: 'Entity tags the current version must match, or `*`.', schema: { type: 'string' } },
  'If-None-Match': { description: 'Entity tags for a 304 answer.', schema: { type: 'string' } },
  Range: { description: 'One `bytes=` range.', schema: { type: 'string' } },
  'If-Range': { description: 'Honour `Range` only while the ETag matches.', schema: { type: 'string' } },
};

const ref = (schema: z.ZodType): JsonSchema => {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error('response schemas must carry an id');
  return { $ref: `#/components/schemas/${id}` };
};

function inline(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

const sessionId = { name: 'sessionId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const fileId = { name: 'fileId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

const OPERATIONS: Operation[] = [
  { method: 'get', path: '/healthz', summary: 'Liveness', public: true, replies: { 200: { json: out.health, description: 'The process runs.' } } },
  {
    method: 'get',
    path: '/readyz',
    summary: 'Readiness',
    public: true,
    replies: {
      200: { json: out.readiness, description: 'Started, and the storage answers (a writable data directory; or the database and blob store reachable).' },
      503: { json: out.readiness, description: 'Starting, shutting down, or the storage cannot be reached or written.' },
    },
  },
  { method: 'get', path: '/openapi.json', summary: 'This document', public: true, replies: { 200: { json: z.object({}).loose(), description: 'OpenAPI 3.1.' } } },
  { method: 'get', path: '/api/v1/me', summary: 'Who the token names, usage and limits', replies: { 200: { json: out.me, description: 'The user.' } } },
  { method: 'delete', path: '/api/v1/me', summary: "Erase all of the user's data", replies: { 204: { empty: true, description: 'Erased.' } } },
  {
    method: 'post',
    path: '/api/v1/sessions',
    summary: 'Create a session',
    body: createSessionBody,
    bodyOptional: true,
    replies: {
      201: { json: out.session, headers: ['ETag', 'Location'], description: 'Created.' },
      400: problem(), 413: problem(), 415: problem(), 507: problem(),
    },
  },
  {
    method: 'get',
    path: '/api/v1/sessions',
    summary: 'List sessions, newest first',
    query: listSessionsQuery,
    replies: { 200: { json: out.sessionPage, description: 'One page.' }, 400: problem() },
  },
  {
    method: 'get',
    path: '/api/v1/sessions/{sessionId}',
    summary: 'Read a session',
    session: true,
    requestHeaders: ['If-None-Match'],
    replies: {
      200: { json: out.session, headers: ['ETag'], description: 'The session.' },
      304: { empty: true, headers: ['ETag'], description: 'Unchanged since the given ETag.' },
    },
  },
  {
    method: 'patch',
    path: '/api/v1/sessions/{sessionId}',
    summary: 'Change title and/or state',
    session: true,
    body: updateSessionBody,
    requestHeaders: ['If-Match'],
    replies: {
      200: { json: out.session, headers: ['ETag'], description: 'Changed.' },
      400: problem(), 412: problem(), 413: problem(), 415: problem(), 507: problem(),
    },
  },
  { method: 'delete', path: '/api/v1/sessions/{sessionId}', summary: 'Delete a session and everything in it', session: true, replies: { 204: { empty: true, description: 'Deleted.' } } },
  {
    method: 'post',
    path: '/api/v1/sessions/{sessionId}/messages',
    summary: 'Append a message',
    session: true,
    body: appendMessageBody,
    replies: { 201: { json: out.message, description: 'Appended, durably.' }, 400: problem(), 413: problem(), 415: problem(), 507: problem() },
  },
  {
    method: 'get',
    path: '/api/v1/sessions/{sessionId}/messages',
    summary: 'Read the history, oldest first',
    session: true,
    query: listMessagesQuery,
    replies: { 200: { json: out.messagePage, description: 'One page.' }, 400: problem() },
  },
  {
    method: 'post',
    path: '/api/v1/sessions/{sessionId}/files',
    summary: 'Upload files (all or nothing)',
    session: true,
    body: 'multipart',
    replies: {
      201: { json: out.fileList, description: 'Every part, stored.' },
      400: problem(),
      413: problem(),
      415: problem(),
      429: problem(),
      507: problem(),
    },
  },
  {
    method: 'get',
    path: '/api/v1/sessions/{sessionId}/files',
    summary: 'List files',
    session: true,
    query: listFilesQuery,
    replies: { 200: { json: out.filePage, description: 'One page of files, oldest first.' }, 400: problem() },
  },
  ...(['get', 'head'] as const).map(
    (method): Operation => ({
      method,
      path: '/api/v1/sessions/{sessionId}/files/{fileId}',
      summary: method === 'get' ? 'Download a file' : 'A file download’s headers',
      session: true,
      requestHeaders: ['Range', 'If-Range', 'If-None-Match'],
      replies: {
        200: { bytes: true, headers: ['ETag', 'Content-Disposition'], description: 'The whole file.' },
        206: { bytes: true, headers: ['ETag', 'Content-Disposition', 'Content-Range'], description: 'The requested range.' },
        304: { empty: true, headers: ['ETag'], description: 'Unchanged since the given ETag.' },
        416: problem(),
        429: problem(),
      },
    }),
  ),
  { method: 'delete', path: '/api/v1/sessions/{sessionId}/files/{fileId}', summary: 'Delete a file', session: true, replies: { 204: { empty: true, description: 'Deleted.' } } },
];

function problem(): Reply {
  return { json: out.problem, description: '' };
}

function headerObjects(names: string[] | undefined): Record<string, unknown> | undefined {
  if (!names || names.length === 0) return undefined;
  return Object.fromEntries(names.map((n) => [n, HEADERS[n]]));
}

function responseObject(status: number, reply: Reply): JsonSchema {
  const description = reply.description || PROBLEM_STATUSES[status] || '';
  const headers = headerObjects(reply.headers);
  let content: JsonSchema | undefined;
  if ('json' in reply) {
    const media = reply.json === out.problem ? 'application/problem+json' : 'application/json';
    content = { [media]: { schema: reply.json === out.problem || z.globalRegistry.get(reply.json)?.id ? ref(reply.json) : inline(reply.json, 'output') } };
  } else if ('bytes' in reply) {
    content = { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } };
  }
  return { description, ...(headers ? { headers } : {}), ...(content ? { content } : {}) };
}

function operationObject(op: Operation): JsonSchema {
  const replies: Record<number, Reply> = { ...op.replies };
  if (!op.public) {
    for (const status of [401, 429, 500, 503]) replies[status] ??= problem();
    if (op.session) replies[404] ??= problem();
  }
  const parameters: unknown[] = [];
  if (op.path.includes('{sessionId}')) parameters.push(sessionId);
  if (op.path.includes('{fileId}')) parameters.push(fileId);
  if (op.query) {
    const properties = inline(op.query, 'input').properties as Record<string, JsonSchema>;
    for (const [name, schema] of Object.entries(properties)) parameters.push({ name, in: 'query', required: false, schema });
  }
  for (const name of op.requestHeaders ?? []) parameters.push({ name, in: 'header', required: false, ...HEADERS[name] });

  let requestBody: JsonSchema | undefined;
  if (op.body === 'multipart') {
    requestBody = {
      required: true,
      content: {
        'multipart/form-data': {
          schema: {
            type: 'object',
            properties: { file: { type: 'array', items: { type: 'string', contentMediaType: 'application/octet-stream' } } },
            required: ['file'],
          },
        },
      },
    };
  } else if (op.body) {
    requestBody = { required: !op.bodyOptional, content: { 'application/json': { schema: inline(op.body, 'input') } } };
  }

  return {
    summary: op.summary,
    operationId: `${op.method}${op.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(\w)/g, (_m, c: string) => c.toUpperCase())}`,
    ...(op.public ? { security: [] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses: Object.fromEntries(Object.entries(replies).map(([status, reply]) => [status, responseObject(Number(status), reply)])),
  };
}

export function buildOpenApiDocument(): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operationObject(op);
  const registry = z.toJSONSchema(z.globalRegistry, { io: 'output', unrepresentable: 'any', uri: (id) => `#/components/schemas/${id}` });
  const schemas = Object.fromEntries(
    Object.entries(registry.schemas).map(([name, schema]) => {
      const { $schema: _dialect, $id: _id, ...rest } = schema as JsonSchema;
      return [name, rest];
    }),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'session-vault',
      version: '1.0.0',
      description: "Tenant-isolated session storage for single-page applications. Every `/api/v1` route acts on the token's user only.",
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas,
    },
    paths,
  };
}
