/**
 * `npm run token -- <user_id> [--expires-in <seconds>]`: prints a token the service with
 * the same configuration accepts. Signs with JWT_SECRET, or in development with the
 * generated dev secret; with a public key configured, tokens come from your IdP instead.
 */
import { loadConfig } from '../config';
import { loadJwtKeys } from '../auth/keys';
import { signToken } from '../auth/token-verifier';
import { openDataDirectory } from '../storage/data-directory';
import { isValidUserId } from '../storage/paths';

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const userId = args[0];
  let expiresIn = 3600;
  const flag = args.indexOf('--expires-in');
  if (flag >= 0) {
    const value = args[flag + 1] ?? '';
    if (!/^\d+$/.test(value) || Number(value) < 1) fail('--expires-in takes a number of seconds');
    expiresIn = Number(value);
  }
  if (userId === undefined || userId.startsWith('--')) fail('usage: npm run token -- <user_id> [--expires-in <seconds>]');
  if (!isValidUserId(userId)) fail('a user id is 1-64 characters of A-Z a-z 0-9 . _ @ | : + = - (not only dots)');

  const loaded = loadConfig(process.env);
  if (!loaded.ok) fail(loaded.errors.join('; '));
  const { config } = loaded;
  const paths = await openDataDirectory(config.dataDir);
  const keys = await loadJwtKeys(config, paths.devSecret);
  if (!keys.ok) fail(keys.errors.join('; '));
  if (!keys.keys.signingKey) fail('the service verifies with a public key; mint tokens with your identity provider');
  process.stdout.write(
    `${signToken(userId, {
      key: keys.keys.signingKey,
      algorithm: keys.keys.algorithms[0]!,
      userClaim: config.jwt.userClaim,
      expiresInSeconds: expiresIn,
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
    })}\n`,
  );
}

void main();
