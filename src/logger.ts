/**
 * Winston to stdout: JSON lines for machines, `pretty` for a terminal. Security events go
 * through `securityEvent` so they carry one category an operator can filter on.
 */
import winston from 'winston';
import type { Config } from './config';

/** Where a winston format leaves the finished line (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for('message');

export type Logger = winston.Logger;

/**
 * One JSON object per line, timestamp, level and message first. Log fields are plain data
 * (ids, numbers, short strings), so JSON.stringify serves, at a fraction of the cost of a
 * key-sorting, cycle-safe serializer on a line written for every request; a field that
 * cannot be serialized costs its fields, never the line.
 */
const jsonLine = winston.format((info) => {
  const { level, message, ...fields } = info;
  const timestamp = new Date().toISOString();
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

type Corkable = NodeJS.WritableStream & { cork(): void; uncork(): void; writableCorked: number };

let stdoutUncorkedOnExit = false;

/**
 * Writes to `destination` made in one turn of the event loop leave together: the stream is
 * corked at the first and uncorked once the turn's callbacks have run, so a busy service
 * makes one write call per turn rather than one per request line (the call, not the line,
 * was most of a line's cost). Winston's own lines to the same stream queue in the same
 * order. A line waits at most until the end of its turn; process.stdout is also uncorked on
 * exit, so what was logged before a normal exit (or a crash that exits) is handed to the
 * file or pipe, as far as a pipe has room then, as for any output written just before exit.
 */
function writesByTurn(destination: NodeJS.WritableStream): (text: string) => void {
  if (!('cork' in destination) || typeof destination.cork !== 'function') return (text) => destination.write(text);
  const stream = destination as Corkable;
  if (stream === (process.stdout as unknown) && !stdoutUncorkedOnExit) {
    stdoutUncorkedOnExit = true;
    process.once('exit', () => {
      while (process.stdout.writableCorked > 0) process.stdout.uncork();
    });
  }
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  return (text) => {
    if (!corked) {
      corked = true;
      stream.cork();
      setImmediate(uncork);
    }
    stream.write(text);
  };
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
  const transport = stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console();
  const logger = winston.createLogger({ level: options.level, format, transports: [transport] });
  if (options.format !== 'pretty') {
    // The Console transport writes to process.stdout.
    const write = writesByTurn(stream ?? process.stdout);
    const infoEnabled = levels.info! <= highest;
    jsonLineWriters.set(logger, {
      info: (message, members) => {
        if (!infoEnabled) return;
        const ids = traceFields?.();
        const trace = ids ? `,"trace_id":${JSON.stringify(ids.trace_id)},"span_id":${JSON.stringify(ids.span_id)}` : '';
        write(`{"timestamp":"${new Date().toISOString()}","level":"info","message":${JSON.stringify(message)},${members}${trace}}\n`);
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
