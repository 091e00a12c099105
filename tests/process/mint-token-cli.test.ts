/**
 * `npm run token` as a user runs it (tsx on src/cli/mint-token.ts): a token and exit 0, usage
 * and exit 0 for --help, and exit 2 with the flag named for anything it does not know, so a
 * typo such as `--expires 10` never prints a one-hour token.
 */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { makeTempDir, TEST_SECRET } from '../helpers/test-app';

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const CLI = path.join(ROOT, 'src', 'cli', 'mint-token.ts');

let dataDir: string;
beforeAll(async () => {
  dataDir = await makeTempDir();
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

function token(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      TSX,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

it('prints a token for the user, with the lifetime asked for', async () => {
  const { code, stdout, stderr } = await token(['alice', '--expires-in', '120']);
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  const claims = jwt.verify(stdout.trim(), TEST_SECRET, { algorithms: ['HS256'] }) as jwt.JwtPayload;
  expect(claims.sub).toBe('alice');
  expect(claims.exp! - claims.iat!).toBe(120);
});

it('prints usage on stdout and exits 0 for --help and -h', async () => {
  for (const flag of ['--help', '-h']) {
    const { code, stdout, stderr } = await token([flag]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/^usage: npm run -s token -- <user_id> \[--expires-in <seconds>\]/);
  }
});

it.each([
  [['alice', '--expires', '10'], /^token: unknown flag --expires \(the flags are --expires-in and --help\)\n/],
  [['alice', '-x'], /^token: unknown flag -x /],
  [['alice', '--expires-in'], /^token: Option '--expires-in <value>' argument missing/],
  [['alice', '--expires-in', '10s'], /^token: --expires-in takes a whole number of seconds/],
  [[], /^token: a user id is required/],
  [['alice', 'bob'], /^token: one user id, not 2/],
  [['../etc'], /^token: a user id is 1-64 characters/],
])('refuses %j with exit 2, one line saying why and the usage, and prints no token', async (args, why) => {
  const { code, stdout, stderr } = await token(args);
  expect(code).toBe(2);
  expect(stdout).toBe('');
  expect(stderr).toMatch(why);
  expect(stderr).toContain('usage: npm run -s token');
});

it('exits 1 when the configuration cannot mint (production without JWT_SECRET)', async () => {
  const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(TSX, [CLI, 'alice'], { env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DATA_DIR: dataDir } }, (error, _stdout, stderr) =>
      resolve({ code: error ? Number(error.code) : 0, stderr }),
    );
  });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^token: /);
});

it('reads the `.env` of the working directory as the service does, and the real environment wins', async () => {
  const cwd = await makeTempDir();
  try {
    await writeFile(path.join(cwd, '.env'), `NODE_ENV=production\nJWT_SECRET=${TEST_SECRET}\nDATA_DIR=${dataDir}\n`);
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(TSX, [CLI, 'alice'], { cwd, env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) =>
          resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    const fromFile = await run({});
    expect({ code: fromFile.code, stderr: fromFile.stderr }).toEqual({ code: 0, stderr: '' });
    expect((jwt.verify(fromFile.stdout.trim(), TEST_SECRET, { algorithms: ['HS256'] }) as jwt.JwtPayload).sub).toBe('alice');

    const otherSecret = 'another-secret-of-at-least-thirty-two-characters';
    const fromEnvironment = await run({ JWT_SECRET: otherSecret });
    expect(fromEnvironment.code).toBe(0);
    expect(() => jwt.verify(fromEnvironment.stdout.trim(), otherSecret, { algorithms: ['HS256'] })).not.toThrow();
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
});
