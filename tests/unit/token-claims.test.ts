/**
 * TokenVerifier on its own: `iat` in the future beyond the clock tolerance and a `crit`
 * header are refused with a reason for the security log, and a refused token is never
 * remembered as verified.
 */
import { createHmac, createSecretKey, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { StaticKeyResolver } from '../../src/auth/key-resolver';
import { TokenVerifier, type VerifierOptions } from '../../src/auth/token-verifier';
import { Unauthorized } from '../../src/errors';

const SECRET = 'unit-test-secret-that-is-long-enough-for-hs256';
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs any header and payload, including ones jsonwebtoken's sign() would not produce. */
function signRaw(header: object, payload: object, secret = SECRET): string {
  const unsigned = `${b64(header)}.${b64(payload)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

function verifier(overrides: Partial<VerifierOptions> = {}): TokenVerifier {
  return new TokenVerifier({
    keys: new StaticKeyResolver(createSecretKey(Buffer.from(SECRET)), ['HS256']),
    issuer: undefined,
    audience: undefined,
    userClaim: 'sub',
    clockToleranceSeconds: 5,
    ...overrides,
  });
}

function reasonOf(v: TokenVerifier, token: string): string {
  try {
    v.verify(token);
  } catch (error) {
    expect(error).toBeInstanceOf(Unauthorized);
    return (error as Unauthorized).reason;
  }
  throw new Error('the token was accepted');
}

afterEach(() => jest.useRealTimers());

describe('iat', () => {
  it('accepts iat in the past, now, and in the future within the tolerance', () => {
    const v = verifier();
    for (const iat of [now() - 3600, now(), now() + 5]) {
      expect(v.verify(signRaw({ alg: 'HS256', typ: 'JWT' }, { sub: 'alice', iat, exp: now() + 600 }))).toBe('alice');
    }
  });

  it('refuses iat in the future beyond the tolerance, with its reason', () => {
    const v = verifier();
    expect(reasonOf(v, signRaw({ alg: 'HS256' }, { sub: 'alice', iat: now() + 60, exp: now() + 600 }))).toBe('token issued in the future');
    expect(reasonOf(v, signRaw({ alg: 'HS256' }, { sub: 'alice', iat: now() + 7, exp: now() + 600 }))).toBe('token issued in the future');
  });

  it('uses the configured tolerance: 0 refuses one second ahead, 120 accepts a minute ahead', () => {
    const strict = verifier({ clockToleranceSeconds: 0 });
    expect(reasonOf(strict, signRaw({ alg: 'HS256' }, { sub: 'alice', iat: now() + 2, exp: now() + 600 }))).toBe('token issued in the future');
    const lenient = verifier({ clockToleranceSeconds: 120 });
    expect(lenient.verify(signRaw({ alg: 'HS256' }, { sub: 'alice', iat: now() + 60, exp: now() + 600 }))).toBe('alice');
  });

  it.each([
    ['a string', '1700000000'],
    ['null', null],
    ['an object', { t: 1 }],
  ])('refuses an iat that is %s', (_name, iat) => {
    expect(reasonOf(verifier(), signRaw({ alg: 'HS256' }, { sub: 'alice', iat, exp: now() + 600 }))).toBe('invalid iat value');
  });

  it('never remembers a refused token: it is checked again, and accepted once its iat is no longer in the future', () => {
    jest.useFakeTimers({ now: Date.now() });
    const v = verifier({ clockToleranceSeconds: 0 });
    const token = signRaw({ alg: 'HS256' }, { sub: 'alice', iat: now() + 30, exp: now() + 600 });
    expect(reasonOf(v, token)).toBe('token issued in the future');
    expect(reasonOf(v, token)).toBe('token issued in the future');
    jest.advanceTimersByTime(31_000);
    expect(v.verify(token)).toBe('alice');
  });
});

describe('crit', () => {
  it.each([
    ['an extension it does not understand', { crit: ['exp'], exp: 1 }],
    ['b64 (RFC 7797)', { crit: ['b64'], b64: false }],
    ['an empty list (forbidden by RFC 7515)', { crit: [] }],
    ['a malformed value', { crit: 'http://example.invalid/ext' }],
    ['null', { crit: null }],
  ])('refuses a header whose crit is %s', (_name, extra) => {
    const token = signRaw({ alg: 'HS256', typ: 'JWT', ...extra }, { sub: 'alice', exp: now() + 600 });
    expect(reasonOf(verifier(), token)).toBe('token header has crit (no extension is understood)');
  });

  it('refuses crit on a token that was otherwise fine, every time (never cached)', () => {
    const v = verifier();
    const good = signRaw({ alg: 'HS256', typ: 'JWT' }, { sub: 'alice', exp: now() + 600 });
    const withCrit = signRaw({ alg: 'HS256', typ: 'JWT', crit: ['x'], x: 1 }, { sub: 'alice', exp: now() + 600 });
    expect(v.verify(good)).toBe('alice');
    for (let i = 0; i < 3; i += 1) expect(reasonOf(v, withCrit)).toBe('token header has crit (no extension is understood)');
    expect(v.verify(good)).toBe('alice');
  });

  it('refuses crit with an asymmetric key too', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const v = verifier({ keys: new StaticKeyResolver(publicKey, ['ES256']) });
    const plain = jwt.sign({ sub: 'alice' }, privateKey, { algorithm: 'ES256', expiresIn: 60 });
    expect(v.verify(plain)).toBe('alice');
    const critical = jwt.sign({ sub: 'alice' }, privateKey, { algorithm: 'ES256', expiresIn: 60, header: { alg: 'ES256', crit: ['exp'] } as jwt.JwtHeader });
    expect(reasonOf(v, critical)).toBe('token header has crit (no extension is understood)');
  });

  it('does not let a crit check replace signature checking: a forged crit-less token still fails on its signature', () => {
    const forged = signRaw({ alg: 'HS256' }, { sub: 'alice', exp: now() + 600 }, 'another-secret-another-secret-another!');
    expect(reasonOf(verifier(), forged)).toBe('token rejected: invalid signature');
  });
});
