import { loadConfig } from '../../src/config';

const SECRET = 'x'.repeat(40);

function errorsOf(env: Record<string, string>): string[] {
  const result = loadConfig(env);
  return result.ok ? [] : result.errors;
}

describe('configuration', () => {
  it('runs on defaults in development with no variables at all', () => {
    const result = loadConfig({});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({ env: 'development', host: '127.0.0.1', port: 3000, trustProxy: false });
    expect(result.config.storage).toEqual({
      backend: 'fs',
      dataDir: './data',
      sessionCacheBytes: 64 * 1024 * 1024,
      userIndexCacheBytes: 64 * 1024 * 1024,
      legacyCleanup: 'delete',
    });
    expect(result.config.jwt.userClaim).toBe('sub');
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', JWT_SECRET: '' }).ok).toBe(true);
  });

  it('names each bad variable on its own line', () => {
    const errors = errorsOf({ PORT: 'eighty', LEGACY_CLEANUP: 'sometimes', RATE_LIMIT_MAX: '0' });
    expect(errors).toHaveLength(3);
    expect(errors.some((e) => e.startsWith('PORT: '))).toBe(true);
    expect(errors.some((e) => e.startsWith('LEGACY_CLEANUP: '))).toBe(true);
    expect(errors.some((e) => e.startsWith('RATE_LIMIT_MAX: '))).toBe(true);
  });

  it('reads each storage backend\'s settings in its own branch, and names an unknown backend', () => {
    const result = loadConfig({ STORAGE_BACKEND: 'fs', DATA_DIR: '/srv/vault', LEGACY_CLEANUP: 'off', SESSION_CACHE_BYTES: '0' });
    expect(result.ok && result.config.storage).toMatchObject({ backend: 'fs', dataDir: '/srv/vault', legacyCleanup: 'off', sessionCacheBytes: 0 });
    expect(errorsOf({ STORAGE_BACKEND: 'dynamo' })).toEqual([expect.stringMatching(/^STORAGE_BACKEND: /)]);
    expect(errorsOf({ STORAGE_BACKEND: 'fs', SESSION_CACHE_BYTES: 'lots' })).toEqual([expect.stringMatching(/^SESSION_CACHE_BYTES: /)]);
  });

  describe('STORAGE_BACKEND=postgres', () => {
    const pg = { STORAGE_BACKEND: 'postgres', DATABASE_URL: 'postgres://app@db.internal:5432/vault', S3_BUCKET: 'vault-files' };

    it('reads its settings with their defaults: migrations as DATABASE_URL, bytes in S3, a bucket made outside production', () => {
      const result = loadConfig(pg);
      expect(result.ok && result.config.storage).toEqual({
        backend: 'postgres',
        dataDir: './data',
        databaseUrl: pg.DATABASE_URL,
        migrationUrl: pg.DATABASE_URL,
        poolMax: 10,
        statementTimeoutMs: 5000,
        reservationTtlSeconds: 600,
        blobs: {
          store: 's3',
          s3: {
            endpoint: undefined,
            region: 'us-east-1',
            bucket: 'vault-files',
            accessKeyId: undefined,
            secretAccessKey: undefined,
            forcePathStyle: false,
            partSize: 8 * 1024 * 1024,
            createBucket: true,
          },
        },
      });
      const production = loadConfig({ ...pg, NODE_ENV: 'production', JWT_SECRET: SECRET });
      expect(production.ok && production.config.storage).toMatchObject({ blobs: { s3: { createBucket: false } } });
      const onDisk = loadConfig({ STORAGE_BACKEND: 'postgres', DATABASE_URL: pg.DATABASE_URL, BLOB_STORE: 'fs', DATA_DIR: '/srv/vault' });
      expect(onDisk.ok && onDisk.config.storage).toMatchObject({ dataDir: '/srv/vault', blobs: { store: 'fs' } });
    });

    it('names each bad variable on its own line', () => {
      expect(errorsOf({ STORAGE_BACKEND: 'postgres' })).toEqual([expect.stringMatching(/^DATABASE_URL: /)]);
      expect(errorsOf({ STORAGE_BACKEND: 'postgres', DATABASE_URL: pg.DATABASE_URL })).toEqual(['S3_BUCKET: required with BLOB_STORE=s3']);
      expect(errorsOf({ ...pg, S3_ACCESS_KEY_ID: 'AKIA' })).toEqual([expect.stringMatching(/^S3_ACCESS_KEY_ID: set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY together/)]);
      const errors = errorsOf({
        ...pg,
        DATABASE_URL: 'mysql://app@db/vault',
        DATABASE_MIGRATION_URL: 'not a url',
        DATABASE_POOL_MAX: '0',
        DATABASE_STATEMENT_TIMEOUT_MS: 'soon',
        BLOB_STORE: 'gcs',
        S3_ENDPOINT: 'ftp://files',
        S3_BUCKET: 'Vault_Files',
        S3_FORCE_PATH_STYLE: 'yes',
        S3_PART_SIZE: String(1024 * 1024),
      });
      expect(errors.map((line) => line.split(':')[0]).sort()).toEqual([
        'BLOB_STORE',
        'DATABASE_MIGRATION_URL',
        'DATABASE_POOL_MAX',
        'DATABASE_STATEMENT_TIMEOUT_MS',
        'DATABASE_URL',
        'S3_BUCKET',
        'S3_ENDPOINT',
        'S3_FORCE_PATH_STYLE',
        'S3_PART_SIZE',
      ]);
    });

    it('never prints a password or secret key, even inside a URL it refuses', () => {
      const errors = errorsOf({
        ...pg,
        DATABASE_URL: 'mysql://app:Pa55-in-url@db/vault',
        DATABASE_MIGRATION_URL: 'postgres://owner:Pa55-also@',
        S3_SECRET_ACCESS_KEY: 'S3-secret-alone',
      });
      expect(errors.length).toBeGreaterThanOrEqual(2);
      expect(errors.join('\n')).not.toMatch(/Pa55|S3-secret/);
    });

    it('keeps a live upload\'s reservation longer than the upload idle timeout', () => {
      expect(errorsOf({ ...pg, UPLOAD_RESERVATION_TTL_S: '30', UPLOAD_IDLE_TIMEOUT_MS: '30000' })).toEqual([
        'UPLOAD_RESERVATION_TTL_S: must be at least twice UPLOAD_IDLE_TIMEOUT_MS, so a live upload never loses its reservation',
      ]);
      expect(errorsOf({ ...pg, UPLOAD_RESERVATION_TTL_S: '60', UPLOAD_IDLE_TIMEOUT_MS: '30000' })).toEqual([]);
    });

    it('does not read the filesystem backend\'s settings, nor postgres\'s with fs', () => {
      expect(errorsOf({ DATABASE_POOL_MAX: 'many' })).toEqual([]);
    });
  });

  it('keeps idle connections longer than a proxy does (65 s, headers 66 s), drains within Docker\'s 10 s grace, and refuses a headers timeout not above keep-alive', () => {
    const result = loadConfig({});
    expect(result.ok && result.config.http).toMatchObject({ keepAliveTimeoutMs: 65_000, headersTimeoutMs: 66_000 });
    expect(result.ok && result.config.shutdownTimeoutMs).toBe(8_000);
    const refusal = 'HTTP_HEADERS_TIMEOUT_MS: must be greater than HTTP_KEEP_ALIVE_TIMEOUT_MS';
    expect(errorsOf({ HTTP_HEADERS_TIMEOUT_MS: '65000' })).toEqual([refusal]);
    expect(errorsOf({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '70000' })).toEqual([refusal]);
    expect(errorsOf({ HTTP_KEEP_ALIVE_TIMEOUT_MS: '1500', HTTP_HEADERS_TIMEOUT_MS: '2000' })).toEqual([]);
  });

  it('produces the domain\'s limits under the names /me shows', () => {
    const result = loadConfig({ MAX_SESSIONS_PER_USER: '7', USER_QUOTA_BYTES: '4096', UPLOAD_ALLOWED_TYPES: 'text/plain' });
    expect(result.ok && result.config.limits).toMatchObject({ sessions: 7, bytes: 4096, uploadTypes: ['text/plain'] });
  });

  it('refuses production without a secret or public key', () => {
    expect(errorsOf({ NODE_ENV: 'production' })).toEqual([expect.stringMatching(/^JWT_SECRET: required in production/)]);
  });

  it('refuses a short secret without printing it', () => {
    const errors = errorsOf({ NODE_ENV: 'production', JWT_SECRET: 'hunter2-short-secret' });
    expect(errors).toEqual(['JWT_SECRET: must be at least 32 bytes']);
    expect(errors.join()).not.toContain('hunter2');
  });

  it('refuses CORS_ORIGINS=* in production only', () => {
    expect(errorsOf({ NODE_ENV: 'production', JWT_SECRET: SECRET, CORS_ORIGINS: '*' })).toEqual([
      expect.stringMatching(/^CORS_ORIGINS: /),
    ]);
    expect(errorsOf({ CORS_ORIGINS: '*' })).toEqual([]);
  });

  it('accepts exact origins and refuses paths or garbage', () => {
    expect(errorsOf({ CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' })).toEqual([]);
    expect(errorsOf({ CORS_ORIGINS: 'https://app.example.com/' })).toHaveLength(1);
    expect(errorsOf({ CORS_ORIGINS: 'app.example.com' })).toHaveLength(1);
  });

  it('never accepts the none algorithm', () => {
    expect(errorsOf({ JWT_ALGORITHMS: 'HS256,none' })).toEqual(['JWT_ALGORITHMS: "none" is never accepted']);
  });

  it('refuses a secret and a public key together', () => {
    expect(errorsOf({ JWT_SECRET: SECRET, JWT_PUBLIC_KEY_FILE: '/k.pem' })).toEqual([
      'JWT_SECRET, JWT_PUBLIC_KEY_FILE: set exactly one key source (JWT_SECRET, JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL, JWT_OIDC_ISSUER)',
    ]);
  });

  it('parses TRUST_PROXY as off, a hop count or an address list', () => {
    const parse = (v: string) => {
      const r = loadConfig({ TRUST_PROXY: v });
      return r.ok ? r.config.trustProxy : r.errors;
    };
    expect(parse('false')).toBe(false);
    expect(parse('1')).toBe(1);
    expect(parse('10.0.0.0/8, 192.168.1.1, ::1')).toEqual(['10.0.0.0/8', '192.168.1.1', '::1']);
    expect(parse('true')).toEqual([expect.stringMatching(/^TRUST_PROXY: /)]);
    expect(parse('10.0.0.0/33')).toEqual([expect.stringMatching(/^TRUST_PROXY: /)]);
  });
});

describe('rate-limit store configuration', () => {
  const redis = { RATE_LIMIT_STORE: 'redis', REDIS_URL: 'redis://cache.internal:6379/2' };
  const rateLimitOf = (env: Record<string, string>) => {
    const result = loadConfig(env);
    return result.ok ? result.config.rateLimit : result.errors;
  };

  it('counts in memory and lets requests pass on store errors by default, and reads REDIS_URL only with RATE_LIMIT_STORE=redis', () => {
    expect(rateLimitOf({})).toMatchObject({ store: { type: 'memory' }, onStoreError: 'allow' });
    expect(rateLimitOf({ REDIS_URL: 'not a url' })).toMatchObject({ store: { type: 'memory' } });
    expect(rateLimitOf(redis)).toMatchObject({ store: { type: 'redis', url: redis.REDIS_URL }, onStoreError: 'allow' });
    expect(rateLimitOf({ ...redis, REDIS_URL: 'rediss://:pw@cache.internal', RATE_LIMIT_ON_STORE_ERROR: 'deny' })).toMatchObject({
      store: { type: 'redis', url: 'rediss://:pw@cache.internal' },
      onStoreError: 'deny',
    });
  });

  it('names each bad variable on its own line', () => {
    expect(errorsOf({ RATE_LIMIT_STORE: 'redis' })).toEqual(['REDIS_URL: required with RATE_LIMIT_STORE=redis']);
    expect(errorsOf({ RATE_LIMIT_STORE: 'memcached', RATE_LIMIT_ON_STORE_ERROR: 'maybe' }).map((line) => line.split(':')[0]).sort()).toEqual([
      'RATE_LIMIT_ON_STORE_ERROR',
      'RATE_LIMIT_STORE',
    ]);
    for (const url of ['http://cache.internal:6379', 'redis://', 'redis://cache.internal/zero', 'redis://cache.internal/0/1', 'cache.internal:6379']) {
      expect(errorsOf({ ...redis, REDIS_URL: url })).toEqual([expect.stringMatching(/^REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/)]);
    }
  });

  it('never prints a password, even inside a URL it refuses', () => {
    const errors = [
      ...errorsOf({ ...redis, REDIS_URL: 'http://app:Pa55-in-url@cache.internal:6379' }),
      ...errorsOf({ ...redis, REDIS_URL: 'redis://app:Pa55%zz-bad-escape@cache.internal' }),
      ...errorsOf({ ...redis, REDIS_URL: 'redis://:Pa55-no-host@' }),
    ];
    expect(errors).toHaveLength(3);
    expect(errors.join('\n')).not.toMatch(/Pa55/);
  });
});
