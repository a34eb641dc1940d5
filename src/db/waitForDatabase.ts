import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../log.ts';

/**
 * Waits until Postgres answers, retrying with backoff (0.5 s doubling to 5 s) for at most `waitMs`, so a
 * service started before its database (compose, a platform restart) comes up by itself.
 * @throws Error naming the server and the last failure when it never answers.
 */
export async function waitForDatabase(url: string, waitMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + waitMs;
  const { hostname, port } = new URL(url);
  for (let attempt = 1, delay = 500; ; attempt++, delay = Math.min(delay * 2, 5_000)) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, query_timeout: 5_000 });
    client.on('error', () => {}); // a connection that dies after the check is no concern here
    try {
      await client.connect();
      await client.query('select 1');
      if (attempt > 1) log.info({ attempt }, 'the database answers');
      return;
    } catch (error) {
      const reason = error instanceof Error ? error.message || (error as NodeJS.ErrnoException).code : String(error);
      if (Date.now() + delay > deadline) {
        throw new Error(
          `the database at ${hostname}:${port || 5432} did not answer within ${Math.round(waitMs / 1000)} s ` +
            `(DATABASE_WAIT_SECONDS): ${reason}`,
        );
      }
      log.warn({ attempt, retryInMs: delay, reason }, 'the database does not answer yet; retrying');
      await sleep(delay);
    } finally {
      await client.end().catch(() => {});
    }
  }
}
