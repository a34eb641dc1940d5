import pg from 'pg';
import type { Logger } from '../log.ts';

export type Listener = { close(): Promise<void> };

const MAX_BACKOFF_MS = 5_000;

/**
 * A dedicated connection that LISTENs on `channel`. When it drops, it reconnects with backoff (0.5 s
 * doubling to 5 s) and calls `onReconnect`, since notifications sent meanwhile are lost. Resolves after
 * the first attempt; when that fails, it keeps trying in the background.
 */
export async function listen(options: {
  url: string;
  channel: string;
  log: Logger;
  onNotification(payload: string): void;
  onReconnect(): void | Promise<void>;
  /** Told when the connection is up (LISTEN done) and when it is lost: notifications may be missed then. */
  onConnectionChange?(up: boolean): void;
}): Promise<Listener> {
  let client: pg.Client | null = null;
  let connected = false;
  let closed = false;

  const connect = async (delayMs: number): Promise<void> => {
    if (closed) return;
    const listener = new pg.Client({ connectionString: options.url, keepAlive: true, connectionTimeoutMillis: 5_000 });
    let reconnecting = false;
    const reconnect = (error?: unknown) => {
      if (reconnecting || closed) return;
      reconnecting = true;
      options.onConnectionChange?.(false);
      options.log.warn(
        { err: error, channel: options.channel, retryInMs: delayMs },
        'a LISTEN connection was lost; reconnecting',
      );
      listener.end().catch(() => {});
      setTimeout(() => void connect(Math.min(delayMs * 2, MAX_BACKOFF_MS)), delayMs).unref();
    };
    listener.on('error', reconnect);
    listener.on('end', () => reconnect());
    listener.on('notification', (message) => options.onNotification(message.payload ?? ''));
    try {
      await listener.connect();
      await listener.query(`listen ${pg.escapeIdentifier(options.channel)}`);
    } catch (error) {
      reconnect(error);
      return;
    }
    client = listener;
    options.onConnectionChange?.(true);
    if (connected) {
      options.log.info({ channel: options.channel }, 'the LISTEN connection is back');
      await options.onReconnect();
    }
    connected = true;
  };
  await connect(500);

  return {
    async close() {
      closed = true;
      options.onConnectionChange?.(false);
      await client?.end().catch(() => {});
    },
  };
}
