/**
 * Turns the configured JWT key material into a KeyObject once, at startup.
 *
 * jsonwebtoken given a string secret re-derives the key on every verification; a
 * KeyObject is derived once. In development without a configured key, a random secret is
 * generated once into `<DATA_DIR>/.dev-jwt-secret` (mode 0600) so `npm run token` and the
 * server agree without set-up. Production never gets here without a configured key.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { Config, JwtAlgorithm } from '../config';
import { readOrCreateSecretFile } from '../secret-file';

export interface JwtKeys {
  /** What verifies tokens. */
  verificationKey: KeyObject;
  algorithms: JwtAlgorithm[];
  /** Present only for a shared secret: what `npm run token` signs with. */
  signingKey: KeyObject | undefined;
  source: 'JWT_SECRET' | 'JWT_PUBLIC_KEY' | 'JWT_PUBLIC_KEY_FILE' | 'dev secret file';
}

export type KeysResult = { ok: true; keys: JwtKeys } | { ok: false; errors: string[] };

const MIN_SECRET_BYTES = 32;

/** What a key of this type can verify; a token is held to these and the configured allowlist. */
export function algorithmsFor(key: KeyObject): JwtAlgorithm[] {
  if (key.type === 'secret') return ['HS256', 'HS384', 'HS512'];
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      return [];
    }
    default:
      return [];
  }
}

function pinAlgorithms(key: KeyObject, configured: JwtAlgorithm[] | undefined, variable: string): JwtAlgorithm[] | string {
  const usable = algorithmsFor(key);
  if (usable.length === 0) return `${variable}: key type ${key.asymmetricKeyType ?? key.type} is not supported (use RSA or EC P-256/384/521)`;
  if (configured === undefined) return [usable[0]!];
  const unusable = configured.filter((a) => !usable.includes(a));
  if (unusable.length > 0) return `JWT_ALGORITHMS: ${unusable.join(', ')} cannot be used with the configured key`;
  return configured;
}

/** The static key sources; a JWKS (config.jwt.jwks) is jwks-key-source.ts's. */
export async function loadJwtKeys(config: Config): Promise<KeysResult> {
  const { jwt } = config;
  if (jwt.jwks !== undefined) return { ok: false, errors: ['JWT_JWKS_URL: keys from a JWKS are not static keys'] };
  let key: KeyObject;
  let source: JwtKeys['source'];
  if (jwt.secret !== undefined) {
    key = createSecretKey(Buffer.from(jwt.secret, 'utf8'));
    source = 'JWT_SECRET';
  } else if (jwt.publicKeyPem !== undefined || jwt.publicKeyFile !== undefined) {
    source = jwt.publicKeyPem !== undefined ? 'JWT_PUBLIC_KEY' : 'JWT_PUBLIC_KEY_FILE';
    let pem: string;
    try {
      pem = jwt.publicKeyPem !== undefined ? jwt.publicKeyPem.replace(/\\n/g, '\n') : await fs.readFile(jwt.publicKeyFile!, 'utf8');
    } catch {
      return { ok: false, errors: ['JWT_PUBLIC_KEY_FILE: cannot be read'] };
    }
    try {
      key = createPublicKey(pem);
    } catch {
      return { ok: false, errors: [`${source}: not a PEM public key`] };
    }
  } else if (!config.production) {
    const secret = await readOrCreateSecretFile(config.jwt.devSecretFile);
    if (secret.length < MIN_SECRET_BYTES) {
      return { ok: false, errors: [`JWT_SECRET: the dev secret file holds fewer than ${MIN_SECRET_BYTES} bytes; delete it to regenerate`] };
    }
    key = createSecretKey(secret);
    source = 'dev secret file';
  } else {
    return { ok: false, errors: ['JWT_SECRET: required in production'] };
  }
  const algorithms = pinAlgorithms(key, jwt.algorithms, source === 'dev secret file' ? 'JWT_SECRET' : source);
  if (typeof algorithms === 'string') return { ok: false, errors: [algorithms] };
  return { ok: true, keys: { verificationKey: key, algorithms, signingKey: key.type === 'secret' ? key : undefined, source } };
}
