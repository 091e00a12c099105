/** `npm run token -- <user_id> [--expires-in <seconds>]`: prints a token the service accepts. */
import { isValidUserId } from '../sessions/ids';
import { createTokenMinter } from './token-minter';

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

  const minter = await createTokenMinter(process.env);
  if (!minter.ok) fail(minter.error);
  process.stdout.write(`${minter.mint(userId, expiresIn)}\n`);
}

void main();
