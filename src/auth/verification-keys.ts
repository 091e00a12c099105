/**
 * The keys tokens are verified with, opened once at startup from whichever source is
 * configured: a JWKS (JWT_JWKS_URL or JWT_OIDC_ISSUER), whose first fetch is awaited here,
 * or a static secret or public key (keys.ts).
 */
import type { Config } from '../config';
import type { Logger } from '../logger';
import { StaticKeyResolver, type KeyResolver } from './key-resolver';
import { loadJwtKeys } from './keys';

export interface VerificationKeys {
  resolver: KeyResolver;
  /** Stops fetching (a JWKS); nothing for a static key. */
  close(): void;
}

export type VerificationKeysResult = { ok: true; keys: VerificationKeys } | { ok: false; errors: string[] };

export async function openVerificationKeys(config: Config, logger: Logger): Promise<VerificationKeysResult> {
  const { jwks } = config.jwt;
  if (jwks === undefined) {
    const loaded = await loadJwtKeys(config);
    if (!loaded.ok) return loaded;
    logger.info('jwt verification', { source: loaded.keys.source, algorithms: loaded.keys.algorithms });
    return { ok: true, keys: { resolver: new StaticKeyResolver(loaded.keys.verificationKey, loaded.keys.algorithms), close: () => {} } };
  }
  // jwks-rsa and jose are loaded only when keys come from a key set.
  const { DEFAULT_JWKS_ALGORITHMS, JwksKeySource } = await import('./jwks-key-source.js');
  const variable = jwks.url !== undefined ? 'JWT_JWKS_URL' : 'JWT_OIDC_ISSUER';
  const algorithms = config.jwt.algorithms ?? DEFAULT_JWKS_ALGORITHMS;
  logger.info('jwt verification', { source: variable, algorithms });
  const source = new JwksKeySource(jwks, algorithms, logger);
  // Bounded by JWT_JWKS_TIMEOUT_MS. A failure was logged as the start of an outage; fetching goes on.
  const first = await source.start();
  if (!first.ok && jwks.requiredAtStart) {
    source.close();
    return { ok: false, errors: [`${variable}: the signing keys could not be fetched at startup (${first.reason}) and JWT_JWKS_REQUIRED_AT_START is true`] };
  }
  return { ok: true, keys: { resolver: source, close: () => source.close() } };
}
