/**
 * Verifies a bearer token and yields the user id it names, or refuses with a reason.
 *
 * jsonwebtoken alone accepts a token without `exp`, a user claim of any type, an `iat` in
 * the future and a `crit` header; all are refused here. The algorithm list is pinned, so
 * `none` and key-confusion (an HS256 token signed with an RSA public key) fail before the
 * signature is even considered.
 *
 * A token that passed is remembered, by its exact text, until it expires or its key is no
 * longer one to accept (a JWKS dropped it): the same string is the same signature over the
 * same claims, so a SPA's repeated requests skip the signature and claim checks without
 * weakening them. The memory is bounded.
 *
 * The key comes from a KeyResolver: at once for a static key or a JWKS key already held,
 * so only a token that needs a key fetched makes `verify` return a promise.
 */
import jwt from 'jsonwebtoken';
import type { KeyObject } from 'node:crypto';
import type { JwtAlgorithm } from '../config';
import { Unauthorized } from '../errors';
import { isValidUserId } from '../sessions/ids';
import type { KeyResolver, VerificationKey } from './key-resolver';

export interface VerifierOptions {
  keys: KeyResolver;
  issuer: string | undefined;
  audience: string | undefined;
  userClaim: string;
  clockToleranceSeconds: number;
}

/** Longer than any token an IdP issues; refusing early keeps parsing cost bounded. */
const MAX_TOKEN_LENGTH = 8192;
const REMEMBERED_TOKENS = 10_000;

interface Verified {
  userId: string;
  /** The instant (ms) from which jsonwebtoken would call the token expired. */
  expiresAtMs: number;
  key: VerificationKey;
}

export class TokenVerifier {
  private readonly verified = new Map<string, Verified>();

  constructor(private readonly options: VerifierOptions) {}

  /**
   * Returns the user id (or a promise of it when the token's key must be fetched), or throws
   * (rejects with) Unauthorized carrying the reason for the security log.
   */
  verify(token: string): string | Promise<string> {
    const remembered = this.verified.get(token);
    if (remembered && Date.now() < remembered.expiresAtMs && this.options.keys.holds(remembered.key)) return remembered.userId;
    if (remembered) this.verified.delete(token);
    if (token.length > MAX_TOKEN_LENGTH) throw new Unauthorized('token too long');
    const key = this.options.keys.resolve(token);
    return key instanceof Promise ? key.then((resolved) => this.verifyWith(token, resolved)) : this.verifyWith(token, key);
  }

  private verifyWith(token: string, key: VerificationKey): string {
    const { userId, exp } = this.verifyFully(token, key);
    if (this.verified.size >= REMEMBERED_TOKENS) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { userId, expiresAtMs: (exp + this.options.clockToleranceSeconds) * 1000, key });
    return userId;
  }

  private verifyFully(token: string, { key, algorithms }: VerificationKey): { userId: string; exp: number } {
    let verified: jwt.Jwt;
    try {
      // `complete` hands back the protected header the signature covered, so the header
      // checks below cost no second decode and no second verification.
      verified = jwt.verify(token, key, {
        algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: this.options.clockToleranceSeconds,
        complete: true,
      });
    } catch (error) {
      if (error instanceof jwt.TokenExpiredError) throw new Unauthorized('token expired');
      if (error instanceof jwt.NotBeforeError) throw new Unauthorized('token not yet valid');
      if (error instanceof jwt.JsonWebTokenError) throw new Unauthorized(`token rejected: ${error.message}`);
      throw new Unauthorized('token rejected');
    }
    // RFC 7515 section 4.1.11: a recipient must refuse a token whose `crit` names an extension it
    // does not understand. This service understands none, so any `crit` (even an empty or
    // malformed one, which the RFC forbids outright) is a refusal.
    if (Object.hasOwn(verified.header, 'crit')) throw new Unauthorized('token header has crit (no extension is understood)');
    const payload = verified.payload;
    if (typeof payload !== 'object' || payload === null) throw new Unauthorized('payload is not a claims object');
    if (typeof payload.exp !== 'number') throw new Unauthorized('token has no exp');
    // jsonwebtoken checks `iat` only with maxAge. A token issued in the future was minted by
    // a clock (or a forger) this service should not trust; the same tolerance as nbf applies.
    if (payload.iat !== undefined) {
      if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat)) throw new Unauthorized('invalid iat value');
      if (payload.iat > Math.floor(Date.now() / 1000) + this.options.clockToleranceSeconds) throw new Unauthorized('token issued in the future');
    }
    const userId: unknown = (payload as Record<string, unknown>)[this.options.userClaim];
    if (typeof userId !== 'string') throw new Unauthorized(`claim ${this.options.userClaim} missing or not a string`);
    if (!isValidUserId(userId)) throw new Unauthorized(`claim ${this.options.userClaim} is not a valid user id`);
    return { userId, exp: payload.exp };
  }
}

export interface SignOptions {
  key: KeyObject;
  algorithm: JwtAlgorithm;
  userClaim: string;
  expiresInSeconds: number;
  issuer: string | undefined;
  audience: string | undefined;
}

/** Mints a token the verifier accepts; for `npm run token` and tests, never for the API. */
export function signToken(userId: string, options: SignOptions): string {
  if (!isValidUserId(userId)) throw new Error('not a valid user id');
  return jwt.sign({ [options.userClaim]: userId }, options.key, {
    algorithm: options.algorithm,
    expiresIn: options.expiresInSeconds,
    ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
    ...(options.audience !== undefined ? { audience: options.audience } : {}),
  });
}
