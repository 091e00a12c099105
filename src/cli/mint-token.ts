/**
 * `npm run token -- <user_id> [--expires-in <seconds>]`: prints a token the service accepts.
 * Exit codes: 0 a token (or `--help`), 1 the configuration cannot mint one, 2 a usage error
 * (an unknown flag, a missing or invalid argument), so a typo never yields a token with a
 * lifetime nobody asked for.
 */
import { parseArgs } from 'node:util';
import { loadEnvFile } from '../env-file';
import { isValidUserId } from '../sessions/ids';
import { createTokenMinter } from './token-minter';

const USAGE = [
  'usage: npm run -s token -- <user_id> [--expires-in <seconds>]',
  '',
  '  Prints a token for <user_id>, signed as the service with the same configuration verifies it',
  '  (JWT_SECRET, or in development the generated dev secret).',
  '',
  '  --expires-in <seconds>  lifetime of the token (default 3600)',
  '  -h, --help              this text',
].join('\n');

function fail(code: 1 | 2, message: string): never {
  process.stderr.write(`token: ${message}\n`);
  if (code === 2) process.stderr.write(`${USAGE.split('\n')[0]!}  (--help for more)\n`);
  process.exit(code);
}

function parse(argv: string[]): { userId: string; expiresIn: number } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { 'expires-in': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // parseArgs' own message names the flag, then explains `--` at length: the name is enough.
    const message = error instanceof Error ? error.message : String(error);
    const flag = /'(-[^' ]+)/.exec(message)?.[1];
    if ((error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) fail(2, `unknown flag ${flag} (the flags are --expires-in and --help)`);
    fail(2, message.split('\n')[0]!);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (positionals.length !== 1) fail(2, positionals.length === 0 ? 'a user id is required' : `one user id, not ${positionals.length}`);
  const userId = positionals[0]!;
  if (!isValidUserId(userId)) fail(2, 'a user id is 1-64 characters of A-Z a-z 0-9 . _ @ | : + = - (not only dots)');
  let expiresIn = 3600;
  const value = values['expires-in'];
  if (value !== undefined) {
    if (!/^\d+$/.test(value) || Number(value) < 1) fail(2, '--expires-in takes a whole number of seconds, 1 or more');
    expiresIn = Number(value);
  }
  return { userId, expiresIn };
}

async function main(): Promise<void> {
  const { userId, expiresIn } = parse(process.argv.slice(2));
  // The same `.env` the service reads, so the token is signed with the key the service checks.
  const envFile = loadEnvFile();
  if ('error' in envFile) fail(1, envFile.error);
  const minter = await createTokenMinter(process.env);
  if (!minter.ok) fail(1, minter.error);
  process.stdout.write(`${minter.mint(userId, expiresIn)}\n`);
}

void main();
