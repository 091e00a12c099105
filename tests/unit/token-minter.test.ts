/**
 * Minting a development token needs the key and nothing else: it never opens (or creates) the
 * data directory, and the generated secret lives where DEV_JWT_SECRET_FILE says.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { createTokenMinter } from '../../src/cli/token-minter';
import { makeTempDir } from '../helpers/test-app';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(() => rm(dir, { recursive: true, force: true }));

it('keeps the dev secret where DEV_JWT_SECRET_FILE says (0600), and never creates the data directory', async () => {
  const secretFile = path.join(dir, 'secrets', 'dev-jwt');
  const dataDir = path.join(dir, 'data-never-made');
  const minter = await createTokenMinter({ NODE_ENV: 'development', DATA_DIR: dataDir, DEV_JWT_SECRET_FILE: secretFile });
  if (!minter.ok) throw new Error(minter.error);
  const token = minter.mint('alice');
  expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
  await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  // The same file signs the next token: a second minter agrees with the first.
  const again = await createTokenMinter({ NODE_ENV: 'development', DATA_DIR: dataDir, DEV_JWT_SECRET_FILE: secretFile });
  if (!again.ok) throw new Error(again.error);
  expect(jwt.verify(token, await readFile(secretFile), { algorithms: ['HS256'] })).toMatchObject({ sub: 'alice' });
  expect(jwt.decode(again.mint('alice'))).toMatchObject({ sub: 'alice' });
});

it('defaults to <DATA_DIR>/.dev-jwt-secret, as before', async () => {
  const minter = await createTokenMinter({ NODE_ENV: 'development', DATA_DIR: dir });
  expect(minter.ok).toBe(true);
  expect((await stat(path.join(dir, '.dev-jwt-secret'))).mode & 0o777).toBe(0o600);
});

it('refuses to mint with keys from an identity provider, and makes no dev secret', async () => {
  for (const env of [{ JWT_JWKS_URL: 'https://idp.example.com/jwks.json' }, { JWT_OIDC_ISSUER: 'https://idp.example.com/' }]) {
    const minter = await createTokenMinter({ NODE_ENV: 'development', DATA_DIR: dir, ...env });
    expect(minter).toEqual({ ok: false, error: expect.stringMatching(/keys from your identity provider/) });
  }
  await expect(stat(path.join(dir, '.dev-jwt-secret'))).rejects.toMatchObject({ code: 'ENOENT' });
});
