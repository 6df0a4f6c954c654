import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

/** The daemon's logger: JSON lines on stderr (journald keeps them), one child per request via Fastify. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}
