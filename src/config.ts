/**
 * The service's configuration: one zod schema over the environment.
 *
 * This is the only module that reads `process.env` (and only through `loadConfig`'s
 * argument, so tests pass their own). Every problem is reported as one line naming the
 * variable; a secret's value never appears in a message.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import type { Limits } from './sessions/limits';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const DEFAULT_UPLOAD_TYPES = [
  'text/plain',
  'text/csv',
  'application/json',
  'text/markdown',
  'application/pdf',
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
];

export const JWT_ALGORITHM_NAMES = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHM_NAMES)[number];

/** A whole number read from a string, with a default when the variable is unset. */
function wholeNumber(defaultValue: number, min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .optional()
    .transform((v) => (v === undefined ? defaultValue : Number(v)))
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
}

function commaList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function isAddressOrCidr(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** `false`, a hop count, or a list of addresses/CIDRs: what Express's `trust proxy` takes. */
const trustProxy = z
  .string()
  .trim()
  .optional()
  .transform((value, ctx): false | number | string[] => {
    if (value === undefined || value === 'false' || value === '0') return false;
    if (/^\d+$/.test(value)) {
      const hops = Number(value);
      if (hops > 10) ctx.addIssue({ code: 'custom', message: 'a hop count must be at most 10' });
      return hops;
    }
    if (value === 'true') {
      ctx.addIssue({
        code: 'custom',
        message: 'trusting every proxy lets any client forge its address; give a hop count or addresses',
      });
      return false;
    }
    const entries = commaList(value);
    const bad = entries.filter((e) => !isAddressOrCidr(e));
    if (entries.length === 0 || bad.length > 0) {
      ctx.addIssue({ code: 'custom', message: `not a hop count or address/CIDR list: ${bad.join(', ')}` });
    }
    return entries;
  });

const corsOrigins = z
  .string()
  .optional()
  .transform((value, ctx): string[] => {
    if (value === undefined) return [];
    const origins = commaList(value);
    for (const origin of origins) {
      if (origin === '*') continue;
      let parsed: URL | undefined;
      try {
        parsed = new URL(origin);
      } catch {
        parsed = undefined;
      }
      if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin) {
        ctx.addIssue({ code: 'custom', message: `not an exact origin like https://app.example.com: ${origin}` });
      }
    }
    return origins;
  });

const jwtAlgorithms = z
  .string()
  .optional()
  .transform((value, ctx): JwtAlgorithm[] | undefined => {
    if (value === undefined) return undefined;
    const names = commaList(value);
    const known = new Set<string>(JWT_ALGORITHM_NAMES);
    for (const name of names) {
      if (name.toLowerCase() === 'none') {
        ctx.addIssue({ code: 'custom', message: '"none" is never accepted' });
      } else if (!known.has(name)) {
        ctx.addIssue({ code: 'custom', message: `unknown algorithm ${name}` });
      }
    }
    if (names.length === 0) ctx.addIssue({ code: 'custom', message: 'must name at least one algorithm' });
    return names as JwtAlgorithm[];
  });

const optionalText = z.string().trim().min(1).optional();

const booleanFlag = (defaultValue: boolean) =>
  z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .optional()
    .transform((v) => (v === undefined ? defaultValue : v === 'true'));


const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    HOST: z.string().trim().min(1).default('127.0.0.1'),
    PORT: wholeNumber(3000, 0, 65535),
    JWT_SECRET: z.string().optional(),
    DEV_JWT_SECRET_FILE: optionalText,
    JWT_PUBLIC_KEY: optionalText,
    JWT_PUBLIC_KEY_FILE: optionalText,
    JWT_ALGORITHMS: jwtAlgorithms,
    JWT_ISSUER: optionalText,
    JWT_AUDIENCE: optionalText,
    JWT_USER_CLAIM: z
      .string()
      .trim()
      .regex(/^[A-Za-z_][A-Za-z0-9_:.-]{0,63}$/, 'must be a claim name like sub')
      .default('sub'),
    JWT_CLOCK_TOLERANCE_S: wholeNumber(5, 0, 300),
    JWT_JWKS_URL: optionalText,
    JWT_OIDC_ISSUER: optionalText,
    JWT_JWKS_CACHE_S: wholeNumber(600, 1, 7 * 24 * 3600),
    JWT_JWKS_REFETCH_MIN_S: wholeNumber(30, 1, 3600),
    JWT_JWKS_TIMEOUT_MS: wholeNumber(3000, 100, 60_000),
    JWT_JWKS_UNAVAILABLE: z.enum(['401', '503'], { message: 'must be 401 or 503' }).default('401'),
    JWT_JWKS_REQUIRED_AT_START: booleanFlag(false),
    TRUST_PROXY: trustProxy,
    CORS_ORIGINS: corsOrigins,
    API_DOCS: z.enum(['on', 'off'], { message: 'must be on or off' }).optional(),
    RATE_LIMIT_WINDOW_MS: wholeNumber(60_000, 1_000, 24 * 3600_000),
    RATE_LIMIT_MAX: wholeNumber(600, 1, 10_000_000),
    RATE_LIMIT_IP_MAX: wholeNumber(1200, 1, 10_000_000),
    RATE_LIMIT_ON_STORE_ERROR: z.enum(['allow', 'deny']).default('allow'),
    MAX_JSON_BYTES: wholeNumber(512 * KiB, 1 * KiB, 64 * MiB),
    MAX_JSON_DEPTH: wholeNumber(64, 2, 1000),
    MAX_STATE_BYTES: wholeNumber(256 * KiB, 2, 64 * MiB),
    MAX_MESSAGE_BYTES: wholeNumber(64 * KiB, 64, 64 * MiB),
    MAX_UPLOAD_BYTES: wholeNumber(50 * MiB, 1, 100 * GiB),
    MAX_FILES_PER_UPLOAD: wholeNumber(10, 1, 1000),
    MAX_FILES_PER_SESSION: wholeNumber(1000, 1, 1_000_000),
    MAX_CONCURRENT_DOWNLOADS: wholeNumber(8, 1, 10_000),
    MAX_CONCURRENT_UPLOADS: wholeNumber(4, 1, 10_000),
    UPLOAD_ALLOWED_TYPES: z
      .string()
      .optional()
      .transform((v) => (v === undefined ? DEFAULT_UPLOAD_TYPES : commaList(v).map((t) => t.toLowerCase())))
      .pipe(z.array(z.string().regex(/^[a-z0-9.+-]+\/[a-z0-9.+-]+$/, 'must be type/subtype')).min(1)),
    USER_QUOTA_BYTES: wholeNumber(1 * GiB, 1 * KiB, 2 ** 50),
    MAX_SESSIONS_PER_USER: wholeNumber(10_000, 1, 10_000_000),
    CURSOR_SECRET: z.string().optional(),
    // Above HTTP_KEEP_ALIVE_TIMEOUT_MS (checked below): Node must not count an idle keep-alive
    // connection's wait for its next request against the headers timeout.
    HTTP_HEADERS_TIMEOUT_MS: wholeNumber(66_000, 1_000, 600_000),
    HTTP_REQUEST_TIMEOUT_MS: wholeNumber(300_000, 1_000, 24 * 3600_000),
    // Above a proxy's upstream keep-alive (nginx, load balancers: commonly 60 s), so that the
    // proxy, never the service, closes an idle connection: otherwise a request the proxy sends
    // on a connection the service is closing fails with a 502.
    HTTP_KEEP_ALIVE_TIMEOUT_MS: wholeNumber(65_000, 0, 600_000),
    HTTP_IDLE_TIMEOUT_MS: wholeNumber(60_000, 1_000, 24 * 3600_000),
    DOWNLOAD_IDLE_TIMEOUT_MS: wholeNumber(30_000, 100, 3600_000),
    UPLOAD_IDLE_TIMEOUT_MS: wholeNumber(30_000, 100, 3600_000),
    // Below Docker's default stop grace (10 s), so a drain ends before the SIGKILL.
    SHUTDOWN_TIMEOUT_MS: wholeNumber(8_000, 0, 600_000),
    LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
    LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
    METRICS: z.enum(['on', 'off'], { message: 'must be on or off' }).default('off'),
    METRICS_HOST: z.string().trim().min(1).default('127.0.0.1'),
    METRICS_PORT: wholeNumber(9464, 0, 65535),
    // The OpenTelemetry SDK's own variables: set, tracing is on. The exporter reads the
    // endpoint (and any other OTEL_EXPORTER_OTLP_* variable) from the environment itself.
    OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
    OTEL_SERVICE_NAME: z.string().trim().min(1).default('session-vault'),
  });

/** A PostgreSQL connection URL; the message never repeats it (it may hold a password). */
const databaseUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      return ['postgres:', 'postgresql:'].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, 'must be a postgres:// or postgresql:// URL');

/**
 * A Redis connection URL. Checked without repeating it (it may hold a password): a scheme
 * node-redis speaks, a host, and at most a database number as its path.
 */
const redisUrl = z
  .string({ error: (issue) => (issue.input === undefined ? 'required with RATE_LIMIT_STORE=redis' : 'must be a string') })
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      // The client decodes the user and password; a stray % would make it throw at startup.
      decodeURIComponent(url.username);
      decodeURIComponent(url.password);
      return ['redis:', 'rediss:'].includes(url.protocol) && url.hostname !== '' && /^(\/\d{0,5})?$/.test(url.pathname);
    } catch {
      return false;
    }
  }, 'must be a redis:// or rediss:// URL: redis://[user:password@]host[:port][/database], special characters of the password percent-encoded');

/**
 * Where rate-limit counters live: in this process's memory, or in Redis, shared by every
 * replica. REDIS_URL is read (and validated) only when it is used.
 */
const rateLimitStoreSchema = z.discriminatedUnion('RATE_LIMIT_STORE', [
  z.object({ RATE_LIMIT_STORE: z.literal('memory') }),
  z.object({ RATE_LIMIT_STORE: z.literal('redis'), REDIS_URL: redisUrl }),
]);

/**
 * Where sessions are stored, one branch per backend: each backend's own settings are read
 * (and validated) only when it is the one chosen. A new backend is one more branch.
 */
const storageSchema = z.discriminatedUnion('STORAGE_BACKEND', [
  z.object({
    STORAGE_BACKEND: z.literal('fs'),
    DATA_DIR: z.string().trim().min(1).default('./data'),
    SESSION_CACHE_BYTES: wholeNumber(64 * MiB, 0, 64 * GiB),
    USER_INDEX_CACHE_BYTES: wholeNumber(64 * MiB, 1 * MiB, 64 * GiB),
    LEGACY_CLEANUP: z.enum(['delete', 'dry-run', 'off']).default('delete'),
  }),
  z
    .object({
      STORAGE_BACKEND: z.literal('postgres'),
      DATA_DIR: z.string().trim().min(1).default('./data'),
      DATABASE_URL: databaseUrl,
      DATABASE_MIGRATION_URL: databaseUrl.optional(),
      DATABASE_POOL_MAX: wholeNumber(10, 1, 1000),
      DATABASE_STATEMENT_TIMEOUT_MS: wholeNumber(5000, 100, 600_000),
      UPLOAD_RESERVATION_TTL_S: wholeNumber(600, 2, 24 * 3600),
      BLOB_STORE: z.enum(['s3', 'fs']).default('s3'),
      S3_ENDPOINT: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
      S3_REGION: z.string().trim().min(1).default('us-east-1'),
      S3_BUCKET: z
        .string()
        .trim()
        .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name (3-63 of a-z 0-9 . -)')
        .optional(),
      S3_ACCESS_KEY_ID: z.string().trim().min(1).optional(),
      S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
      S3_FORCE_PATH_STYLE: booleanFlag(false),
      S3_PART_SIZE: wholeNumber(8 * MiB, 5 * MiB, 5 * GiB),
    })
    .superRefine((e, ctx) => {
      if (e.BLOB_STORE === 's3' && e.S3_BUCKET === undefined) {
        ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'required with BLOB_STORE=s3' });
      }
      if ((e.S3_ACCESS_KEY_ID === undefined) !== (e.S3_SECRET_ACCESS_KEY === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['S3_ACCESS_KEY_ID'], message: 'set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY together, or neither (the SDK\'s default credentials)' });
      }
    }),
]);

/** The filesystem backend: one process owns DATA_DIR. */
export interface FsStorageConfig {
  backend: 'fs';
  dataDir: string;
  /** Memory for recently used session documents; 0 reads every session from disk. */
  sessionCacheBytes: number;
  /** Memory for the per-user indexes of sessions and files; idle users beyond it are evicted. */
  userIndexCacheBytes: number;
  legacyCleanup: 'delete' | 'dry-run' | 'off';
}

export interface S3Config {
  endpoint: string | undefined;
  region: string;
  bucket: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
  partSize: number;
  /** Outside production a missing bucket is made, so a local S3 (s3rver, MinIO) needs no setup step. */
  createBucket: boolean;
}

/** Metadata in PostgreSQL (any number of processes), bytes in S3 or under DATA_DIR/blobs. */
export interface PostgresStorageConfig {
  backend: 'postgres';
  /** Development secret and, with BLOB_STORE=fs, the file bytes. */
  dataDir: string;
  databaseUrl: string;
  /** The owner role's URL, for migrations; DATABASE_URL when unset. */
  migrationUrl: string;
  poolMax: number;
  statementTimeoutMs: number;
  /** An upload that makes no progress for this long loses its reservation to the sweeper. */
  reservationTtlSeconds: number;
  blobs: { store: 's3'; s3: S3Config } | { store: 'fs' };
}

export type StorageConfig = FsStorageConfig | PostgresStorageConfig;

export interface RateLimitConfig {
  windowMs: number;
  perUser: number;
  perIp: number;
  /** Counters in this process's memory, or in Redis where every replica counts together. */
  store: { type: 'memory' } | { type: 'redis'; url: string };
  /** When the shared store cannot be reached: let the request pass unlimited, or answer 503. */
  onStoreError: 'allow' | 'deny';
}

function storageConfig(s: z.output<typeof storageSchema>, production: boolean): StorageConfig {
  if (s.STORAGE_BACKEND === 'fs') {
    return {
      backend: 'fs',
      dataDir: s.DATA_DIR,
      sessionCacheBytes: s.SESSION_CACHE_BYTES,
      userIndexCacheBytes: s.USER_INDEX_CACHE_BYTES,
      legacyCleanup: s.LEGACY_CLEANUP,
    };
  }
  return {
    backend: 'postgres',
    dataDir: s.DATA_DIR,
    databaseUrl: s.DATABASE_URL,
    migrationUrl: s.DATABASE_MIGRATION_URL ?? s.DATABASE_URL,
    poolMax: s.DATABASE_POOL_MAX,
    statementTimeoutMs: s.DATABASE_STATEMENT_TIMEOUT_MS,
    reservationTtlSeconds: s.UPLOAD_RESERVATION_TTL_S,
    blobs:
      s.BLOB_STORE === 'fs'
        ? { store: 'fs' }
        : {
            store: 's3',
            s3: {
              endpoint: s.S3_ENDPOINT,
              region: s.S3_REGION,
              bucket: s.S3_BUCKET!,
              accessKeyId: s.S3_ACCESS_KEY_ID,
              secretAccessKey: s.S3_SECRET_ACCESS_KEY,
              forcePathStyle: s.S3_FORCE_PATH_STYLE,
              partSize: s.S3_PART_SIZE,
              createBucket: !production,
            },
          },
  };
}

/** The variables that each name a source of the keys tokens are verified with; one at a time. */
const KEY_SOURCES = ['JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_PUBLIC_KEY_FILE', 'JWT_JWKS_URL', 'JWT_OIDC_ISSUER'] as const;

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * Why `value` cannot be where keys are fetched from, or undefined: an absolute http(s) URL
 * with no credentials or fragment, and https in production except on loopback (keys fetched
 * over plain http from another host could be swapped on the way).
 */
export function keyUrlProblem(value: string, production: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute https:// URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an absolute https:// URL';
  if (url.username !== '' || url.password !== '' || url.hash !== '') return 'must not hold credentials or a #fragment';
  if (production && url.protocol === 'http:' && !isLoopbackHost(url.hostname)) return 'must be https:// in production (http:// only on loopback)';
  return undefined;
}

function keySourceProblems(raw: Record<string, string>, production: boolean): string[] {
  const problems: string[] = [];
  const set = KEY_SOURCES.filter((name) => raw[name] !== undefined);
  if (raw.JWT_PUBLIC_KEY !== undefined && raw.JWT_PUBLIC_KEY_FILE !== undefined) {
    problems.push('JWT_PUBLIC_KEY: set JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE, not both');
  }
  const kinds = new Set(set.map((name) => (name === 'JWT_PUBLIC_KEY_FILE' ? 'JWT_PUBLIC_KEY' : name)));
  if (kinds.size > 1) {
    problems.push(`${set.join(', ')}: set exactly one key source (JWT_SECRET, JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL, JWT_OIDC_ISSUER)`);
  }
  if (raw.JWT_SECRET !== undefined && Buffer.byteLength(raw.JWT_SECRET, 'utf8') < 32) problems.push('JWT_SECRET: must be at least 32 bytes');
  if (production && set.length === 0) {
    problems.push('JWT_SECRET: required in production (at least 32 bytes) unless JWT_PUBLIC_KEY, JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL or JWT_OIDC_ISSUER is set');
  }
  for (const name of ['JWT_JWKS_URL', 'JWT_OIDC_ISSUER'] as const) {
    const problem = raw[name] === undefined ? undefined : keyUrlProblem(raw[name], production);
    if (problem) problems.push(`${name}: ${problem}`);
  }
  if (raw.JWT_OIDC_ISSUER !== undefined && raw.JWT_ISSUER !== undefined && raw.JWT_ISSUER !== raw.JWT_OIDC_ISSUER) {
    problems.push('JWT_ISSUER: must equal JWT_OIDC_ISSUER exactly, or be unset (the issuer is then JWT_OIDC_ISSUER)');
  }
  if ((raw.JWT_JWKS_URL !== undefined || raw.JWT_OIDC_ISSUER !== undefined) && raw.JWT_ALGORITHMS !== undefined) {
    const symmetric = commaList(raw.JWT_ALGORITHMS).filter((a) => a.startsWith('HS'));
    if (symmetric.length > 0) problems.push(`JWT_ALGORITHMS: ${symmetric.join(', ')} cannot be used with a JWKS, whose keys are public keys`);
  }
  return problems;
}

/**
 * Rules that span variables. They read the raw strings, so they are reported together
 * with per-variable problems instead of only after those are fixed.
 */
function crossVariableProblems(raw: Record<string, string>): string[] {
  const problems: string[] = [];
  const production = raw.NODE_ENV === 'production';
  problems.push(...keySourceProblems(raw, production));
  if (raw.CURSOR_SECRET !== undefined && Buffer.byteLength(raw.CURSOR_SECRET, 'utf8') < 32) {
    problems.push('CURSOR_SECRET: must be at least 32 bytes');
  }
  if (production && raw.CORS_ORIGINS !== undefined && commaList(raw.CORS_ORIGINS).includes('*')) {
    problems.push('CORS_ORIGINS: "*" is refused in production; list exact origins');
  }
  return problems;
}

type Env = z.output<typeof envSchema>;

export interface JwksConfig {
  /** Exactly one of the two is set. */
  url: string | undefined;
  oidcIssuer: string | undefined;
  cacheSeconds: number;
  refetchMinSeconds: number;
  timeoutMs: number;
  /** What a token gets when its key cannot be fetched. */
  unavailableStatus: 401 | 503;
  requiredAtStart: boolean;
  /** https only, except on loopback (checked again for the jwks_uri that discovery gives). */
  production: boolean;
}

export interface Config {
  env: Env['NODE_ENV'];
  production: boolean;
  host: string;
  port: number;
  storage: StorageConfig;
  jwt: {
    secret: string | undefined;
    publicKeyPem: string | undefined;
    publicKeyFile: string | undefined;
    algorithms: JwtAlgorithm[] | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    userClaim: string;
    clockToleranceSeconds: number;
    /** Keys fetched from a JWKS (JWT_JWKS_URL, or found by OIDC discovery from JWT_OIDC_ISSUER). */
    jwks: JwksConfig | undefined;
    /** Development only: where the generated secret is kept (default `<DATA_DIR>/.dev-jwt-secret`). */
    devSecretFile: string;
  };
  trustProxy: false | number | string[];
  corsOrigins: string[];
  /** Serve the API reference page at /docs (API_DOCS; unset: on outside production). */
  apiDocs: boolean;
  rateLimit: RateLimitConfig;
  /** What the domain enforces, passed to the store and shown by /me as is. */
  limits: Limits;
  /** What the HTTP layer enforces before a request reaches the domain. */
  requestLimits: {
    jsonBytes: number;
    jsonDepth: number;
    /** Downloads (and uploads) one user may have in progress at once. */
    concurrentDownloads: number;
    concurrentUploads: number;
  };
  http: {
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    /** A connection with no bytes either way for this long is closed. */
    idleTimeoutMs: number;
    /** A download whose client reads nothing (an upload whose client sends nothing) for this long is ended. */
    downloadIdleTimeoutMs: number;
    uploadIdleTimeoutMs: number;
  };
  /** Signs listing cursors; unset: a key the storage backend keeps. */
  cursorSecret: string | undefined;
  shutdownTimeoutMs: number;
  log: { level: Env['LOG_LEVEL']; format: Env['LOG_FORMAT'] };
  /** Prometheus metrics on a server of their own, never on the API port; undefined when off. */
  metrics: { host: string; port: number } | undefined;
  /** OpenTelemetry tracing; undefined (nothing loaded) unless OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing: { serviceName: string } | undefined;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false, errors: string[] };

/** Validates an environment. Empty variables count as unset, as a shell user expects. */
/** Every variable the service reads, whichever branch it belongs to (deployment files are checked against it). */
export const CONFIG_VARIABLES: readonly string[] = [
  ...new Set([
    ...Object.keys(envSchema.shape),
    ...rateLimitStoreSchema.options.flatMap((branch) => Object.keys(branch.shape)),
    ...storageSchema.options.flatMap((branch) => Object.keys(branch.shape)),
  ]),
].sort();

export function loadConfig(environment: Record<string, string | undefined>): ConfigResult {
  const present: Record<string, string> = {};
  for (const [key, value] of Object.entries(environment)) {
    if (value !== undefined && value !== '') present[key] = value;
  }
  const parsed = envSchema.safeParse(present);
  const storage = storageSchema.safeParse({ STORAGE_BACKEND: 'fs', ...present });
  const rateLimitStore = rateLimitStoreSchema.safeParse({ RATE_LIMIT_STORE: 'memory', ...present });
  // Messages here are ours or zod's type/enum messages: none repeats the received value,
  // so a mistyped secret cannot end up in a log.
  const errors = [parsed, storage, rateLimitStore].flatMap((result) =>
    result.success ? [] : result.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`),
  );
  errors.push(...crossVariableProblems(present));
  if (parsed.success) {
    const e = parsed.data;
    if (e.MAX_STATE_BYTES > e.MAX_JSON_BYTES) errors.push('MAX_STATE_BYTES: must not exceed MAX_JSON_BYTES');
    if (e.MAX_MESSAGE_BYTES > e.MAX_JSON_BYTES) errors.push('MAX_MESSAGE_BYTES: must not exceed MAX_JSON_BYTES');
    if (e.HTTP_HEADERS_TIMEOUT_MS <= e.HTTP_KEEP_ALIVE_TIMEOUT_MS) {
      errors.push('HTTP_HEADERS_TIMEOUT_MS: must be greater than HTTP_KEEP_ALIVE_TIMEOUT_MS');
    }
    if (e.METRICS === 'on' && e.METRICS_PORT !== 0 && e.METRICS_PORT === e.PORT) {
      errors.push('METRICS_PORT: must differ from PORT (metrics are never served on the API port)');
    }
    // A live upload extends its reservation as its bytes arrive (every third of the TTL), so
    // the longest pause an upload may take between chunks must fit well inside the TTL.
    if (storage.success && storage.data.STORAGE_BACKEND === 'postgres' && storage.data.UPLOAD_RESERVATION_TTL_S * 1000 < 2 * e.UPLOAD_IDLE_TIMEOUT_MS) {
      errors.push('UPLOAD_RESERVATION_TTL_S: must be at least twice UPLOAD_IDLE_TIMEOUT_MS, so a live upload never loses its reservation');
    }
  }
  if (!parsed.success || !storage.success || !rateLimitStore.success || errors.length > 0) return { ok: false, errors };
  const e = parsed.data;
  const storageSettings = storageConfig(storage.data, e.NODE_ENV === 'production');
  return {
    ok: true,
    config: {
      env: e.NODE_ENV,
      production: e.NODE_ENV === 'production',
      host: e.HOST,
      port: e.PORT,
      storage: storageSettings,
      jwt: {
        secret: e.JWT_SECRET,
        publicKeyPem: e.JWT_PUBLIC_KEY,
        publicKeyFile: e.JWT_PUBLIC_KEY_FILE,
        algorithms: e.JWT_ALGORITHMS,
        issuer: e.JWT_OIDC_ISSUER ?? e.JWT_ISSUER,
        audience: e.JWT_AUDIENCE,
        userClaim: e.JWT_USER_CLAIM,
        clockToleranceSeconds: e.JWT_CLOCK_TOLERANCE_S,
        jwks:
          e.JWT_JWKS_URL === undefined && e.JWT_OIDC_ISSUER === undefined
            ? undefined
            : {
                url: e.JWT_JWKS_URL,
                oidcIssuer: e.JWT_OIDC_ISSUER,
                cacheSeconds: e.JWT_JWKS_CACHE_S,
                refetchMinSeconds: e.JWT_JWKS_REFETCH_MIN_S,
                timeoutMs: e.JWT_JWKS_TIMEOUT_MS,
                unavailableStatus: e.JWT_JWKS_UNAVAILABLE === '503' ? 503 : 401,
                requiredAtStart: e.JWT_JWKS_REQUIRED_AT_START,
                production: e.NODE_ENV === 'production',
              },
        devSecretFile: e.DEV_JWT_SECRET_FILE ?? path.join(storageSettings.dataDir, '.dev-jwt-secret'),
      },
      trustProxy: e.TRUST_PROXY,
      corsOrigins: e.CORS_ORIGINS,
      apiDocs: e.API_DOCS === undefined ? e.NODE_ENV !== 'production' : e.API_DOCS === 'on',
      rateLimit: {
        windowMs: e.RATE_LIMIT_WINDOW_MS,
        perUser: e.RATE_LIMIT_MAX,
        perIp: e.RATE_LIMIT_IP_MAX,
        store: rateLimitStore.data.RATE_LIMIT_STORE === 'redis' ? { type: 'redis', url: rateLimitStore.data.REDIS_URL } : { type: 'memory' },
        onStoreError: e.RATE_LIMIT_ON_STORE_ERROR,
      },
      limits: {
        sessions: e.MAX_SESSIONS_PER_USER,
        bytes: e.USER_QUOTA_BYTES,
        stateBytes: e.MAX_STATE_BYTES,
        messageBytes: e.MAX_MESSAGE_BYTES,
        uploadBytes: e.MAX_UPLOAD_BYTES,
        filesPerUpload: e.MAX_FILES_PER_UPLOAD,
        filesPerSession: e.MAX_FILES_PER_SESSION,
        uploadTypes: e.UPLOAD_ALLOWED_TYPES,
      },
      requestLimits: {
        jsonBytes: e.MAX_JSON_BYTES,
        jsonDepth: e.MAX_JSON_DEPTH,
        concurrentDownloads: e.MAX_CONCURRENT_DOWNLOADS,
        concurrentUploads: e.MAX_CONCURRENT_UPLOADS,
      },
      http: {
        headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
        requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
        keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS,
        idleTimeoutMs: e.HTTP_IDLE_TIMEOUT_MS,
        downloadIdleTimeoutMs: e.DOWNLOAD_IDLE_TIMEOUT_MS,
        uploadIdleTimeoutMs: e.UPLOAD_IDLE_TIMEOUT_MS,
      },
      cursorSecret: e.CURSOR_SECRET,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
      log: { level: e.LOG_LEVEL, format: e.LOG_FORMAT },
      metrics: e.METRICS === 'on' ? { host: e.METRICS_HOST, port: e.METRICS_PORT } : undefined,
      tracing: e.OTEL_EXPORTER_OTLP_ENDPOINT === undefined ? undefined : { serviceName: e.OTEL_SERVICE_NAME },
    },
  };
}
