/**
 * Request lines written in one turn of the event loop leave in one write (src/logger.ts,
 * writesByTurn): none is held past its turn, none is lost at a normal exit, and winston's
 * own lines keep their place among them.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { createLogger, jsonLineWriterOf } from '../../src/logger';

const ROOT = path.join(__dirname, '..', '..');

/** A stream that records each call it gets: one entry per write or writev, with its lines. */
function recorder() {
  const calls: string[][] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      calls.push([chunk.toString()]);
      done();
    },
    writev(chunks, done) {
      calls.push(chunks.map(({ chunk }) => (chunk as Buffer).toString()));
      done();
    },
  });
  return { stream, calls };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
const messagesOf = (texts: string[]) => texts.join('').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { message: string }).message);

describe('request lines by turn', () => {
  it('leave in one write per turn, in the order written, winston lines among them', async () => {
    const { stream, calls } = recorder();
    const logger = createLogger({ level: 'info', format: 'json' }, stream);
    const lines = jsonLineWriterOf(logger)!;
    for (let i = 0; i < 50; i++) lines.info(`a${i}`, '"n":1');
    logger.warn('between');
    lines.info('after', '"n":2');
    expect(calls).toEqual([]);
    await nextTurn();
    await nextTurn();
    expect(calls).toHaveLength(1);
    expect(messagesOf(calls[0]!)).toEqual([...Array.from({ length: 50 }, (_, i) => `a${i}`), 'between', 'after']);

    lines.info('next turn', '"n":3');
    await nextTurn();
    await nextTurn();
    expect(calls).toHaveLength(2);
    expect(messagesOf(calls[1]!)).toEqual(['next turn']);
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
