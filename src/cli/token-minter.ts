/**
 * Minting tokens the service with the same configuration accepts: for `npm run token` and
 * the example SPA's development server, never for the API itself. Signs with JWT_SECRET, or
 * in development with the generated dev secret; with a public key configured, tokens come
 * from your identity provider instead.
 */
import { loadJwtKeys } from '../auth/keys';
import { signToken } from '../auth/token-verifier';
import { loadConfig } from '../config';

export type TokenMinter = (userId: string, expiresInSeconds?: number) => string;

export type MinterResult = { ok: true; mint: TokenMinter } | { ok: false; error: string };

export async function createTokenMinter(environment: Record<string, string | undefined>): Promise<MinterResult> {
  const loaded = loadConfig(environment);
  if (!loaded.ok) return { ok: false, error: loaded.errors.join('; ') };
  const { config } = loaded;
  if (config.jwt.jwks !== undefined) {
    return { ok: false, error: 'the service verifies with keys from your identity provider (JWT_JWKS_URL or JWT_OIDC_ISSUER); get tokens from it' };
  }
  // Only the key: minting a token never opens the data directory or any storage.
  const keys = await loadJwtKeys(config);
  if (!keys.ok) return { ok: false, error: keys.errors.join('; ') };
  const signingKey = keys.keys.signingKey;
  if (!signingKey) return { ok: false, error: 'the service verifies with a public key; mint tokens with your identity provider' };
  const algorithm = keys.keys.algorithms[0]!;
  return {
    ok: true,
    mint: (userId, expiresInSeconds = 3600) =>
      signToken(userId, {
        key: signingKey,
        algorithm,
        userClaim: config.jwt.userClaim,
        expiresInSeconds,
        issuer: config.jwt.issuer,
        audience: config.jwt.audience,
      }),
  };
}
