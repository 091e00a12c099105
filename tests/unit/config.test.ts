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
      'JWT_SECRET: set a secret or a public key, not both',
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
