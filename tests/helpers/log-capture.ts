/** A real logger whose JSON lines a test reads back, and waits for, as they are written. */
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger';

export interface LogCapture {
  logger: Logger;
  lines(): Array<Record<string, unknown>>;
  /** Resolves with the first line `match` accepts, once it is written; throws after `timeoutMs` with the log so far. */
  waitForLine(match: (line: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function captureLog(level: 'debug' | 'info' | 'warn' = 'info'): LogCapture {
  const stream = new PassThrough();
  let text = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const lines = () =>
    text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    logger: createLogger({ level, format: 'json' }, stream),
    lines,
    async waitForLine(match, what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines().find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${text}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}
