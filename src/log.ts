import { pino } from 'pino';
import type { Config } from './config.ts';

export type Logger = pino.Logger;

/** JSON lines on stdout; one logger for the process, handed to whoever needs it. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>): Logger {
  return pino({ level: config.LOG_LEVEL, base: { pid: process.pid } });
}
