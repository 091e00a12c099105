/**
 * The OpenAPI 3.1 document served at `/openapi.json`, generated from the zod schemas that
 * validate requests (`schemas.ts`) and describe responses (`response-schemas.ts`). The test
 * suite sends real requests to every route and checks each answer against this document, and
 * lints it with Redocly's recommended rules.
 */
import { z } from 'zod';
import { packageInfo } from '../package-info';
import * as out from './response-schemas';
import { appendMessageBody, createSessionBody, listFilesQuery, listMessagesQuery, listSessionsQuery, updateSessionBody } from './schemas';

type JsonSchema = Record<string, unknown>;

type Reply =
  | { json: z.ZodType; headers?: string[]; description: string }
  | { bytes: true; headers?: string[]; description: string }
  | { empty: true; headers?: string[]; description: string };

/** One tag per resource, in the order a reader meets them (the reference page's menu). */
const TAGS = [
  { name: 'account', description: "The token's user: who it is, what it uses and may use, and erasing all of it." },
  { name: 'sessions', description: "A user's sessions: a title and a JSON `state`, versioned, with `ETag` and `If-Match`." },
  { name: 'messages', description: "A session's history: append-only, numbered, read in pages oldest first." },
  { name: 'files', description: "Files attached to a session: uploaded all or nothing, downloaded as attachments, with ranges." },
  { name: 'health', description: 'Probes for orchestrators and load balancers: public, outside the rate limits.' },
  { name: 'description', description: 'This document. Public, outside the rate limits.' },
] as const;

type Tag = (typeof TAGS)[number]['name'];

interface Operation {
  method: 'get' | 'head' | 'post' | 'patch' | 'delete';
  path: string;
  tag: Tag;
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
  431: "Request headers larger than Node's limit (16 KiB), such as an oversized token: refused by the HTTP server before the request reaches the service, so with no body and no `X-Request-Id`, and the connection is closed.",
  500: 'Unexpected failure; the body says nothing more.',
  503: 'Not ready, or something the request needs (the database, the rate-limit store with `RATE_LIMIT_ON_STORE_ERROR=deny`, the identity provider\'s keys with `JWT_JWKS_UNAVAILABLE=503`) cannot be reached right now; see `Retry-After` when given.',
  507: 'A quota (`limit` names it) or the disk is full; nothing was changed.',
};

const HEADERS: Record<string, { description: string; schema: JsonSchema }> = {
  ETag: { description: 'Entity tag of the returned representation.', schema: { type: 'string' } },
  Location: { description: 'URL of the created resource.', schema: { type: 'string' } },
  'Content-Disposition': { description: 'Always `attachment`, with `filename` and `filename*`.', schema: { type: 'string' } },
  'Content-Range': { description: '`bytes start-end/size`, or `bytes */size` with 416.', schema: { type: 'string' } },
  'Retry-After': {
    description: 'Seconds to wait before trying again: until the rate limit that refused the request resets (429), or while something the request needs cannot be reached (503, when given).',
    schema: { type: 'integer', minimum: 1 },
  },
  'X-Request-Id': {
    description:
      "The request's id: the `X-Request-Id` the client or a proxy sent when it is 8-128 characters of `A-Za-z0-9._:-`, otherwise a new UUID. Every log line of the request and every problem body carry it.",
    schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{8,128}$' },
  },
  RateLimit: {
    description:
      'What is left of each rate limit the request was counted against (IETF draft-ietf-httpapi-ratelimit-headers-08): `"ip"; r=<remaining>; t=<seconds until reset>`, and after authentication `"user"; r=...; t=...` as well, as a list. Not sent while the rate-limit store cannot be reached (`RATE_LIMIT_STORE=redis`).',
    schema: { type: 'string' },
  },
  'RateLimit-Policy': {
    description:
      'The rate limits the request was counted against: `"ip"; q=<requests>; w=<window seconds>; pk=:<partition key hash>:` and, after authentication, `"user"; ...`, as a list. Sent with `RateLimit`.',
    schema: { type: 'string' },
  },
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
  { method: 'get', path: '/healthz', tag: 'health', summary: 'Liveness', public: true, replies: { 200: { json: out.health, description: 'The process runs.' } } },
  {
    method: 'get',
    path: '/readyz',
    tag: 'health',
    summary: 'Readiness',
    public: true,
    replies: {
      200: { json: out.readiness, description: 'Started, and the storage answers (a writable data directory; or the database and blob store reachable).' },
      503: { json: out.readiness, description: 'Starting, shutting down, or the storage cannot be reached or written.' },
    },
  },
  { method: 'get', path: '/openapi.json', tag: 'description', summary: 'This document', public: true, replies: { 200: { json: z.object({}).loose(), description: 'OpenAPI 3.1.' } } },
  { method: 'get', path: '/api/v1/me', tag: 'account', summary: 'Who the token names, usage and limits', replies: { 200: { json: out.me, description: 'The user.' } } },
  { method: 'delete', path: '/api/v1/me', tag: 'account', summary: "Erase all of the user's data", replies: { 204: { empty: true, description: 'Erased.' } } },
  {
    method: 'post',
    path: '/api/v1/sessions',
    tag: 'sessions',
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
    tag: 'sessions',
    summary: 'List sessions, newest first',
    query: listSessionsQuery,
    replies: { 200: { json: out.sessionPage, description: 'One page.' }, 400: problem() },
  },
  {
    method: 'get',
    path: '/api/v1/sessions/{sessionId}',
    tag: 'sessions',
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
    tag: 'sessions',
    summary: 'Change title and/or state',
    session: true,
    body: updateSessionBody,
    requestHeaders: ['If-Match'],
    replies: {
      200: { json: out.session, headers: ['ETag'], description: 'Changed.' },
      400: problem(), 412: problem(), 413: problem(), 415: problem(), 507: problem(),
    },
  },
  { method: 'delete', path: '/api/v1/sessions/{sessionId}', tag: 'sessions', summary: 'Delete a session and everything in it', session: true, replies: { 204: { empty: true, description: 'Deleted.' } } },
  {
    method: 'post',
    path: '/api/v1/sessions/{sessionId}/messages',
    tag: 'messages',
    summary: 'Append a message',
    session: true,
    body: appendMessageBody,
    replies: { 201: { json: out.message, description: 'Appended, durably.' }, 400: problem(), 413: problem(), 415: problem(), 507: problem() },
  },
  {
    method: 'get',
    path: '/api/v1/sessions/{sessionId}/messages',
    tag: 'messages',
    summary: 'Read the history, oldest first',
    session: true,
    query: listMessagesQuery,
    replies: { 200: { json: out.messagePage, description: 'One page.' }, 400: problem() },
  },
  {
    method: 'post',
    path: '/api/v1/sessions/{sessionId}/files',
    tag: 'files',
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
    tag: 'files',
    summary: 'List files',
    session: true,
    query: listFilesQuery,
    replies: { 200: { json: out.filePage, description: 'One page of files, oldest first.' }, 400: problem() },
  },
  ...(['get', 'head'] as const).map(
    (method): Operation => ({
      method,
      path: '/api/v1/sessions/{sessionId}/files/{fileId}',
      tag: 'files',
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
  { method: 'delete', path: '/api/v1/sessions/{sessionId}/files/{fileId}', tag: 'files', summary: 'Delete a file', session: true, replies: { 204: { empty: true, description: 'Deleted.' } } },
];

function problem(): Reply {
  return { json: out.problem, description: '' };
}

/** Response headers every answer of an operation carries, besides its own (`Reply.headers`). */
function commonHeaders(op: Operation, status: number): string[] {
  // Node's HTTP server answers 431 itself, before the app and its middleware run.
  if (status === 431) return [];
  const names = ['X-Request-Id'];
  // The per-IP limit counts every request past the public routes, the per-user one adds its
  // entry after authentication: a refusal (401, 429...) carries them too.
  if (!op.public) names.push('RateLimit', 'RateLimit-Policy');
  if (status === 429 || (status === 503 && !op.public)) names.push('Retry-After');
  return names;
}

function responseObject(op: Operation, status: number, reply: Reply): JsonSchema {
  const description = reply.description || PROBLEM_STATUSES[status] || '';
  const names = [...(reply.headers ?? []), ...commonHeaders(op, status)];
  const headers = Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]));
  let content: JsonSchema | undefined;
  if ('json' in reply) {
    const media = reply.json === out.problem ? 'application/problem+json' : 'application/json';
    content = { [media]: { schema: reply.json === out.problem || z.globalRegistry.get(reply.json)?.id ? ref(reply.json) : inline(reply.json, 'output') } };
  } else if ('bytes' in reply) {
    content = { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } };
  }
  return { description, ...(names.length > 0 ? { headers } : {}), ...(content ? { content } : {}) };
}

function operationObject(op: Operation): JsonSchema {
  const replies: Record<number, Reply> = { ...op.replies };
  if (!op.public) {
    for (const status of [401, 429, 500, 503]) replies[status] ??= problem();
    if (op.session) replies[404] ??= problem();
  }
  replies[431] ??= { empty: true, description: '' };
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
    tags: [op.tag],
    summary: op.summary,
    operationId: `${op.method}${op.path.replace(/\{(\w+)\}/g, 'By_$1').replace(/[^A-Za-z0-9]+(\w)/g, (_m, c: string) => c.toUpperCase())}`,
    ...(op.public ? { security: [] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses: Object.fromEntries(Object.entries(replies).map(([status, reply]) => [status, responseObject(op, Number(status), reply)])),
  };
}

/**
 * package.json's `license` as an OpenAPI License Object. npm's `UNLICENSED` (no rights granted
 * to anyone) is on no SPDX list: it becomes a `LicenseRef-`, SPDX's way to name other terms.
 */
function licenseObject(license: string): { name: string; identifier: string } {
  if (license === 'UNLICENSED') return { name: 'UNLICENSED (proprietary: no licence is granted)', identifier: 'LicenseRef-UNLICENSED' };
  return { name: license, identifier: license };
}

export function buildOpenApiDocument(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of OPERATIONS) (paths[op.path] ??= {})[op.method] = operationObject(op);
  // Only the headers some response names: Redocly flags unused components.
  const responseHeaders = new Set(
    Object.values(paths).flatMap((ops) =>
      Object.values(ops).flatMap((operation) => Object.values(operation.responses as Record<string, JsonSchema>).flatMap((r) => Object.keys(r.headers ?? {}))),
    ),
  );
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
      version: packageInfo.version,
      description:
        "Tenant-isolated session storage for single-page applications. Every `/api/v1` route acts on the token's user only. A reference page rendered from this document is served at `/docs` where enabled (`API_DOCS`).",
      license: licenseObject(packageInfo.license),
    },
    tags: TAGS.map((tag) => ({ ...tag })),
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      headers: Object.fromEntries([...responseHeaders].sort().map((name) => [name, HEADERS[name]])),
      schemas,
    },
    paths,
  };
}
