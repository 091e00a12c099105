/**
 * `.env` support the Node way: when the working directory holds a `.env`, Node's own
 * `process.loadEnvFile` reads it into `process.env` before the configuration is validated.
 * Node never overwrites a variable that is already set, so the real environment wins over
 * the file. No `.env`, nothing happens; the file is never required.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export type EnvFileResult = { loaded: false } | { loaded: true; file: string } | { loaded: false; error: string };

export function loadEnvFile(directory = process.cwd()): EnvFileResult {
  const file = path.join(directory, '.env');
  if (!existsSync(file)) return { loaded: false };
  try {
    process.loadEnvFile(file);
  } catch (error) {
    return { loaded: false, error: `.env: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})` };
  }
  return { loaded: true, file };
}
