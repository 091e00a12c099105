/**
 * Winston to stdout: JSON lines for machines, `pretty` for a terminal. Security events go
 * through `securityEvent` so they carry one category an operator can filter on.
 */
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Config } from './config';

/** Where a winston format leaves the finished line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');

export type Logger = winston.Logger;

/** '000' to '999': the milliseconds of a timestamp. */
const MILLISECONDS = Array.from({ length: 1000 }, (_, ms) => String(ms).padStart(3, '0'));
let secondStartedAt = Number.NaN;
/** The ISO string of the current second up to its milliseconds: `2026-11-27T23:54:52.` */
let secondPrefix = '';

/**
 * The time now as an ISO string (`Date#toISOString`). A busy service writes a line every few
 * hundred microseconds, each in another millisecond, so the string is formatted once per
 * second and each line adds its milliseconds.
 */
export function isoNow(now = Date.now()): string {
  const ms = now - secondStartedAt;
  if (ms >= 0 && ms < 1000) return `${secondPrefix}${MILLISECONDS[ms]!}Z`;
  const iso = new Date(now).toISOString();
  secondStartedAt = now - (((now % 1000) + 1000) % 1000);
  secondPrefix = iso.slice(0, -4);
  return iso;
}

/**
 * One JSON object per line, timestamp, level and message first. Log fields are plain data
 * (ids, numbers, short strings), so JSON.stringify serves, at a fraction of the cost of a
 * key-sorting, cycle-safe serializer on a line written for every request; a field that
 * cannot be serialized costs its fields, never the line.
 */
const jsonLine = winston.format((info) => {
  const { level, message, ...fields } = info;
  const timestamp = isoNow();
  try {
    info[MESSAGE] = JSON.stringify({ timestamp, level, message, ...fields });
  } catch {
    info[MESSAGE] = JSON.stringify({ timestamp, level, message, unserializable: true });
  }
  return info;
});

/** With tracing on: the active span's ids (`trace_id`, `span_id`) on every line written inside one. */
export type TraceFields = () => { trace_id: string; span_id: string } | undefined;

function traceIds(fields: TraceFields) {
  return winston.format((info) => {
    const ids = fields();
    if (ids) Object.assign(info, ids);
    return info;
  })();
}

/**
 * A JSON logger's own line writer, for the one line written for every request: the same line
 * winston would write (timestamp, level, message, then the fields, then the trace ids), built
 * straight into its text from members the caller serialized, and written to the same stream.
 * Winston's stream pipeline, info object and format pass cost about a tenth of a small
 * request's CPU.
 */
export interface JsonLineWriter {
  /** `members`: `"name":value` pairs, comma-separated, already JSON. */
  info(message: string, members: string): void;
}

/** process.stdout's pending writers: each hands over what it holds when the process exits. */
const stdoutFlushes = new Set<() => void>();
let stdoutFlushedOnExit = false;

/**
 * Request lines written in one turn of the event loop leave in one write call: they are
 * gathered and handed to `destination` once the turn's callbacks have run (setImmediate), so a
 * busy service makes one write per turn rather than one per request (the call, not the line,
 * was most of a line's cost), whatever the stream (a file, whose stream writes each chunk
 * alone, as much as a pipe). Winston's own lines are written at once, after what was gathered
 * before them, so every line keeps its place and a warning or an error is never held back. A
 * request line waits at most until the end of its turn; what process.stdout's writers hold is
 * also written on exit, so what was logged before a normal exit (or a crash that exits) is
 * handed to the file or pipe, as far as a pipe has room then, as for any output written just
 * before exit.
 */
function writesByTurn(destination: NodeJS.WritableStream): { gathered(text: string): void; atOnce(text: string): void } {
  let pending = '';
  const flush = () => {
    const text = pending;
    pending = '';
    if (text !== '') destination.write(text);
  };
  if (destination === process.stdout) {
    stdoutFlushes.add(flush);
    if (!stdoutFlushedOnExit) {
      stdoutFlushedOnExit = true;
      process.once('exit', () => {
        for (const flushOne of stdoutFlushes) flushOne();
      });
    }
  }
  return {
    gathered(text) {
      if (pending === '') setImmediate(flush);
      pending += text;
    },
    atOnce(text) {
      flush();
      destination.write(text);
    },
  };
}

/** A stream for winston's transport that writes through `write`. */
function streamThrough(write: (text: string) => void): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, done) {
      write(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      done();
    },
  });
}

const jsonLineWriters = new WeakMap<Logger, JsonLineWriter>();

/** The line writer of a logger made by createLogger with the JSON format; undefined for any other. */
export function jsonLineWriterOf(logger: Logger): JsonLineWriter | undefined {
  return jsonLineWriters.get(logger);
}

export function createLogger(options: Config['log'], stream?: NodeJS.WritableStream, traceFields?: TraceFields): Logger {
  const line =
    options.format === 'pretty'
      ? winston.format.combine(winston.format.timestamp(), winston.format.colorize(), winston.format.simple())
      : jsonLine();
  // Winston formats every line before its transports drop those below the level: a line that
  // will not be written is dropped first. LOG_LEVEL is read once, at startup, so the level's
  // rank is too (winston's isLevelEnabled walks the transports on every call).
  const levels = winston.config.npm.levels;
  const highest = levels[options.level] ?? levels.info!;
  const enabled = winston.format((info) => ((levels[info.level] ?? Number.POSITIVE_INFINITY) <= highest ? info : false))();
  const format = winston.format.combine(enabled, ...(traceFields ? [traceIds(traceFields)] : []), line);
  // JSON lines, winston's and the request log's, leave through one writer.
  const write = options.format === 'pretty' ? undefined : writesByTurn(stream ?? process.stdout);
  const transport = write
    ? new winston.transports.Stream({ stream: streamThrough(write.atOnce) })
    : stream
      ? new winston.transports.Stream({ stream })
      : new winston.transports.Console();
  const logger = winston.createLogger({ level: options.level, format, transports: [transport] });
  if (write) {
    const infoEnabled = levels.info! <= highest;
    jsonLineWriters.set(logger, {
      info: (message, members) => {
        if (!infoEnabled) return;
        const ids = traceFields?.();
        const trace = ids ? `,"trace_id":${JSON.stringify(ids.trace_id)},"span_id":${JSON.stringify(ids.span_id)}` : '';
        write.gathered(`{"timestamp":"${isoNow()}","level":"info","message":${JSON.stringify(message)},${members}${trace}}\n`);
      },
    });
  }
  return logger;
}

export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

export function securityEvent(logger: Logger, event: string, fields: Record<string, unknown>): void {
  logger.warn(event, { category: 'security', event, ...fields });
}
