/**
 * The JWKS and OpenID Connect settings: one key source at a time, URLs fit to fetch keys
 * from, an issuer that cannot disagree with discovery, and no symmetric algorithm for public
 * keys. Each refusal names the variables.
 */
import { loadConfig } from '../../src/config';

const SECRET = 'x'.repeat(40);
const JWKS = 'https://idp.example.com/.well-known/jwks.json';
const ISSUER = 'https://idp.example.com/';

function errorsOf(env: Record<string, string>): string[] {
  const result = loadConfig(env);
  return result.ok ? [] : result.errors;
}

function jwtOf(env: Record<string, string>) {
  const result = loadConfig(env);
  if (!result.ok) throw new Error(result.errors.join('; '));
  return result.config.jwt;
}

describe('JWKS and OIDC settings', () => {
  it('takes a JWKS URL with the documented defaults', () => {
    expect(jwtOf({ JWT_JWKS_URL: JWKS }).jwks).toEqual({
      url: JWKS,
      oidcIssuer: undefined,
      cacheSeconds: 600,
      refetchMinSeconds: 30,
      timeoutMs: 3000,
      unavailableStatus: 401,
      requiredAtStart: false,
      production: false,
    });
  });

  it('takes an OIDC issuer, which is also the issuer every token must carry', () => {
    const jwt = jwtOf({ JWT_OIDC_ISSUER: ISSUER, JWT_JWKS_UNAVAILABLE: '503', JWT_JWKS_REQUIRED_AT_START: 'true' });
    expect(jwt.issuer).toBe(ISSUER);
    expect(jwt.jwks).toMatchObject({ url: undefined, oidcIssuer: ISSUER, unavailableStatus: 503, requiredAtStart: true });
    expect(jwtOf({ JWT_OIDC_ISSUER: ISSUER, JWT_ISSUER: ISSUER }).issuer).toBe(ISSUER);
  });

  it('is absent with a static key source', () => {
    expect(jwtOf({ JWT_SECRET: SECRET }).jwks).toBeUndefined();
  });

  it('refuses two key sources at once, naming both', () => {
    const sources: Record<string, string> = {
      JWT_SECRET: SECRET,
      JWT_PUBLIC_KEY_FILE: '/k.pem',
      JWT_JWKS_URL: JWKS,
      JWT_OIDC_ISSUER: ISSUER,
    };
    const names = Object.keys(sources);
    for (const a of names) {
      for (const b of names.filter((n) => n > a)) {
        const errors = errorsOf({ [a]: sources[a]!, [b]: sources[b]! });
        expect(errors).toEqual([expect.stringMatching(/set exactly one key source/)]);
        expect(errors[0]).toContain(a);
        expect(errors[0]).toContain(b);
      }
    }
  });

  it('accepts a JWKS or an issuer as the key source in production', () => {
    expect(errorsOf({ NODE_ENV: 'production', JWT_JWKS_URL: JWKS, JWT_AUDIENCE: 'api' })).toEqual([]);
    expect(errorsOf({ NODE_ENV: 'production', JWT_OIDC_ISSUER: ISSUER, JWT_AUDIENCE: 'api' })).toEqual([]);
  });

  it('refuses http:// in production except on loopback, and anything that is not an http(s) URL', () => {
    expect(errorsOf({ NODE_ENV: 'production', JWT_JWKS_URL: 'http://idp.example.com/jwks' })).toEqual([
      'JWT_JWKS_URL: must be https:// in production (http:// only on loopback)',
    ]);
    expect(errorsOf({ NODE_ENV: 'production', JWT_OIDC_ISSUER: 'http://idp.example.com' })).toEqual([
      'JWT_OIDC_ISSUER: must be https:// in production (http:// only on loopback)',
    ]);
    for (const loopback of ['http://127.0.0.1:8080/jwks', 'http://localhost:8080/jwks', 'http://[::1]:8080/jwks', 'http://127.9.9.9/jwks']) {
      expect(errorsOf({ NODE_ENV: 'production', JWT_JWKS_URL: loopback })).toEqual([]);
    }
    expect(errorsOf({ JWT_JWKS_URL: 'http://idp.example.com/jwks' })).toEqual([]);
    expect(errorsOf({ JWT_JWKS_URL: 'ftp://idp.example.com/jwks' })).toEqual(['JWT_JWKS_URL: must be an absolute https:// URL']);
    expect(errorsOf({ JWT_JWKS_URL: '/jwks.json' })).toEqual(['JWT_JWKS_URL: must be an absolute https:// URL']);
    expect(errorsOf({ JWT_JWKS_URL: 'https://user:pw@idp.example.com/jwks' })).toEqual(['JWT_JWKS_URL: must not hold credentials or a #fragment']);
    // A host that only starts like loopback is not loopback.
    expect(errorsOf({ NODE_ENV: 'production', JWT_JWKS_URL: 'http://127.0.0.1.example.com/jwks' })).toHaveLength(1);
  });

  it('refuses a JWT_ISSUER that differs from JWT_OIDC_ISSUER', () => {
    expect(errorsOf({ JWT_OIDC_ISSUER: ISSUER, JWT_ISSUER: 'https://idp.example.com' })).toEqual([
      'JWT_ISSUER: must equal JWT_OIDC_ISSUER exactly, or be unset (the issuer is then JWT_OIDC_ISSUER)',
    ]);
  });

  it('refuses HMAC algorithms with a JWKS', () => {
    expect(errorsOf({ JWT_JWKS_URL: JWKS, JWT_ALGORITHMS: 'RS256,HS256' })).toEqual([
      'JWT_ALGORITHMS: HS256 cannot be used with a JWKS, whose keys are public keys',
    ]);
    expect(errorsOf({ JWT_JWKS_URL: JWKS, JWT_ALGORITHMS: 'RS256,ES384' })).toEqual([]);
  });

  it('bounds the tuning variables', () => {
    expect(errorsOf({ JWT_JWKS_URL: JWKS, JWT_JWKS_REFETCH_MIN_S: '0' })).toEqual(['JWT_JWKS_REFETCH_MIN_S: must be at least 1']);
    expect(errorsOf({ JWT_JWKS_URL: JWKS, JWT_JWKS_TIMEOUT_MS: '10' })).toEqual(['JWT_JWKS_TIMEOUT_MS: must be at least 100']);
    expect(errorsOf({ JWT_JWKS_URL: JWKS, JWT_JWKS_UNAVAILABLE: '500' })).toEqual(['JWT_JWKS_UNAVAILABLE: must be 401 or 503']);
    expect(errorsOf({ JWT_JWKS_URL: JWKS, JWT_JWKS_REQUIRED_AT_START: 'yes' })).toEqual(['JWT_JWKS_REQUIRED_AT_START: must be true or false']);
  });
});
