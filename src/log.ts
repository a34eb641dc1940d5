import { pino } from 'pino';
import type { Config } from './config.ts';

export type Logger = pino.Logger;

/**
 * JSON lines on stdout (or `destination`); one logger for the process, handed to whoever needs it.
 * With `pretty` (a person at a terminal, outside production), pino-pretty makes them readable; it is a
 * development dependency, so production never loads it.
 */
export function createLogger(
  config: Pick<Config, 'LOG_LEVEL'>,
  destination?: pino.DestinationStream,
  pretty = false,
): Logger {
  const options: pino.LoggerOptions = {
    level: config.LOG_LEVEL,
    base: { pid: process.pid },
    serializers: { err: (error: unknown) => redactConnections(pino.stdSerializers.err(error as Error), 0) },
  };
  if (destination) return pino(options, destination);
  if (pretty) {
    const prettyOptions = { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' };
    return pino({ ...options, transport: { target: 'pino-pretty', options: prettyOptions } });
  }
  return pino(options);
}

// pg-pool puts the whole client on an idle connection's error (`err.client`), and pg-boss re-emits it:
// a client carries the server's cancel key (`secretKey`) and the connection's password.
const CONNECTION_KEYS = new Set(['client', 'connection', 'pool', 'socket', 'stream', '_client']);
const SECRET_KEYS = new Set(['secretKey', 'password', 'connectionString']);
const MAX_DEPTH = 5;

function redactConnections(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((item) => redactConnections(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (SECRET_KEYS.has(key)) out[key] = '[redacted]';
    else if (CONNECTION_KEYS.has(key) && item !== null && typeof item === 'object') out[key] = '[connection]';
    else out[key] = redactConnections(item, depth + 1);
  }
  return out;
}
