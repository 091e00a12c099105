/**
 * A random secret generated once into a file (mode 0600) and read back on every later
 * start: the development JWT secret, the key that signs listing cursors. Never follows a
 * link; two processes creating it at once end up with the same secret.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';

export async function readOrCreateSecretFile(file: string): Promise<Buffer> {
  // A token may be minted before the service ever ran: the directory may not exist yet.
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  try {
    const handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = Buffer.from(randomBytes(48).toString('base64url'), 'utf8');
  try {
    const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await handle.writeFile(secret);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return secret;
  } catch (error) {
    // Another process (the server and `npm run token`) created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readOrCreateSecretFile(file);
    throw error;
  }
}
