/**
 * Where the verifier gets the key for a token. A static key (a secret or one public key)
 * answers at once; a JWKS answers at once for a key it holds and fetches only for one it
 * does not. Either way the algorithms come from the configuration and the key's type, never
 * from the token.
 */
import type { KeyObject } from 'node:crypto';
import type { JwtAlgorithm } from '../config';

export interface VerificationKey {
  key: KeyObject;
  /** What a token under this key may be signed with: the allowlist narrowed to the key's type (and its JWK `alg`). */
  algorithms: JwtAlgorithm[];
}

export interface KeyResolver {
  /**
   * The key for `token` (whose header it may read), or a promise of it when it must be
   * fetched; throws (or rejects with) Unauthorized, or ServiceUnavailable when the operator
   * chose 503 for an unreachable key source.
   */
  resolve(token: string): VerificationKey | Promise<VerificationKey>;
  /** Whether a key resolved earlier is still one to accept (a JWKS may have dropped it since). */
  holds(key: VerificationKey): boolean;
}

export class StaticKeyResolver implements KeyResolver {
  private readonly only: VerificationKey;

  constructor(key: KeyObject, algorithms: JwtAlgorithm[]) {
    this.only = { key, algorithms };
  }

  resolve(): VerificationKey {
    return this.only;
  }

  holds(key: VerificationKey): boolean {
    return key === this.only;
  }
}
