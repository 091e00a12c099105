/**
 * Request lines written in one turn of the event loop leave in one write (src/logger.ts,
 * writesByTurn): none is held past its turn, none is lost at a normal exit, and winston's
 * own lines keep their place among them without waiting.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { createLogger, jsonLineWriterOf } from '../../src/logger';

const ROOT = path.join(__dirname, '..', '..');

/**
 * A stream that records each call it gets: one entry per write or writev, with its lines.
 * Without `writev` it writes each chunk alone, as a file's stream (process.stdout on a file) does.
 */
function recorder({ writev = true } = {}) {
  const calls: string[][] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      calls.push([chunk.toString()]);
      done();
    },
    ...(writev
      ? {
          writev(chunks: Array<{ chunk: unknown }>, done: (error?: Error | null) => void) {
            calls.push(chunks.map(({ chunk }) => (chunk as Buffer).toString()));
            done();
          },
        }
      : {}),
  });
  return { stream, calls };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const messagesOf = (texts: string[]) => texts.join('').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { message: string }).message);

describe('request lines by turn', () => {
  it('leave in one write per turn, in the order written', async () => {
    const { stream, calls } = recorder();
    const lines = jsonLineWriterOf(createLogger({ level: 'info', format: 'json' }, stream))!;
    for (let i = 0; i < 50; i++) lines.info(`a${i}`, '"n":1');
    expect(calls).toEqual([]);
    await nextTurn();
    await nextTurn();
    expect(calls).toHaveLength(1);
    expect(messagesOf(calls[0]!)).toEqual(Array.from({ length: 50 }, (_, i) => `a${i}`));

    lines.info('next turn', '"n":3');
    await nextTurn();
    await nextTurn();
    expect(calls).toHaveLength(2);
    expect(messagesOf(calls[1]!)).toEqual(['next turn']);
  });

  it('leave in one write per turn to a stream that writes each chunk alone (a file)', async () => {
    const { stream, calls } = recorder({ writev: false });
    const lines = jsonLineWriterOf(createLogger({ level: 'info', format: 'json' }, stream))!;
    for (let i = 0; i < 20; i++) lines.info(`b${i}`, '"n":1');
    await nextTurn();
    await nextTurn();
    expect(calls).toHaveLength(1);
    expect(messagesOf(calls[0]!)).toEqual(Array.from({ length: 20 }, (_, i) => `b${i}`));
  });

  it("let winston's own lines out at once, after the request lines gathered before them", async () => {
    const { stream, calls } = recorder({ writev: false });
    const logger = createLogger({ level: 'info', format: 'json' }, stream);
    const lines = jsonLineWriterOf(logger)!;
    lines.info('r1', '"n":1');
    lines.info('r2', '"n":2');
    logger.error('an error');
    expect(messagesOf(calls.flat())).toEqual(['r1', 'r2', 'an error']);
    lines.info('r3', '"n":3');
    logger.warn('a warning');
    lines.info('r4', '"n":4');
    expect(messagesOf(calls.flat())).toEqual(['r1', 'r2', 'an error', 'r3', 'a warning']);
    await nextTurn();
    await nextTurn();
    expect(messagesOf(calls.flat())).toEqual(['r1', 'r2', 'an error', 'r3', 'a warning', 'r4']);
  });

  it('are all on stdout when the process exits right after writing them', async () => {
    const script = `
      const { createLogger, jsonLineWriterOf } = require(${JSON.stringify(path.join(ROOT, 'dist', 'logger.js'))});
      const lines = jsonLineWriterOf(createLogger({ level: 'info', format: 'json' }));
      for (let i = 0; i < 1000; i++) lines.info('line ' + i, '"i":' + i);
      process.exit(0);
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { maxBuffer: 16 * 1024 * 1024 });
    const written = stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i);
    expect(written).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});
