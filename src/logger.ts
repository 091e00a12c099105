/**
 * Winston to stdout: JSON lines for machines, `pretty` for a terminal. Security events go
 * through `securityEvent` so they carry one category an operator can filter on.
 */
import winston from 'winston';
import type { Config } from './config';

export type Logger = winston.Logger;

export function createLogger(options: Config['log'], stream?: NodeJS.WritableStream): Logger {
  const format =
    options.format === 'pretty'
      ? winston.format.combine(winston.format.timestamp(), winston.format.colorize(), winston.format.simple())
      : winston.format.combine(winston.format.timestamp(), winston.format.json());
  const transport = stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console();
  return winston.createLogger({ level: options.level, format, transports: [transport] });
}

export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

export function securityEvent(logger: Logger, event: string, fields: Record<string, unknown>): void {
  logger.warn(event, { category: 'security', event, ...fields });
}
