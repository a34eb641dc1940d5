/**
 * The service's own timing (src/timing.ts) as production runs it: the tests shorten some of it, so each
 * default is checked here where it takes effect, as the 120 s delay is in tasks.test.ts. (The 10 s attempt
 * is checked in webhooks.test.ts, the heartbeat's takeover in recovery.test.ts, the parking horizon in
 * wake.test.ts, all on production timing.)
 */
import test from 'ava';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startService, stopService } from '../src/service.ts';
import { createTestDatabase, query } from './helpers/db.ts';

type QueueRow = {
  name: string;
  retry_limit: number;
  retry_delay: number;
  retry_backoff: boolean;
  retry_delay_max: number | null;
  expire_seconds: number;
  heartbeat_seconds: number | null;
  dead_letter: string | null;
};

/**
 * The shortest time from a job's first failure to its last retry, by pg-boss's backoff (after failure n,
 * from 0: `delay * 2^n` to twice that, at most `retry_delay_max`).
 */
const shortestRetrySpanSeconds = (queue: QueueRow) => {
  let total = 0;
  for (let n = 0; n < queue.retry_limit; n++) {
    const shortest = queue.retry_backoff ? Math.max(queue.retry_delay, 1) * 2 ** Math.min(n, 15) : queue.retry_delay;
    total += Math.min(queue.retry_delay_max ?? Number.POSITIVE_INFINITY, shortest);
  }
  return total;
};

test('production timing: a worker brings the queues to their policies, whatever a database had before', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  // A database whose queues carry other policies (an older version's, or a test's).
  await query(
    database.url,
    `update pgboss.queue set retry_limit = 1, retry_delay_max = 1, heartbeat_seconds = null, expire_seconds = 900`,
  );
  const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: database.url, RECONCILE_INTERVAL_SECONDS: '3600' });
  const log = createLogger({ LOG_LEVEL: 'silent' });
  const worker = await startService(config, { role: 'worker', url: database.url, directUrl: database.url, log });
  t.teardown(() => stopService(worker));

  const queues = await query<QueueRow>(
    database.url,
    `select name, retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds, heartbeat_seconds, dead_letter
     from pgboss.queue where name in ('complete-task', 'deliver-webhook') order by name`,
  );
  const [completions, deliveries] = queues;
  // A completion that fails (a database hiccup) is retried: 1 s, 2 s, 4 s ... at most a minute apart.
  t.like(completions, { retry_delay: 1, retry_backoff: true, retry_delay_max: 60, heartbeat_seconds: 10 });
  t.true(
    shortestRetrySpanSeconds(completions as QueueRow) >= 15 * 60,
    'a completion is retried for a quarter of an hour at least',
  );
  // A webhook delivery is retried for at least 24 hours (the contract), at most an hour apart, then it fails
  // into the dead letter queue; a worker killed mid-attempt loses its jobs after a 10 s heartbeat.
  t.like(deliveries, {
    retry_backoff: true,
    retry_delay_max: 3600,
    heartbeat_seconds: 10,
    dead_letter: 'deliver-webhook-failed',
  });
  const span = shortestRetrySpanSeconds(deliveries as QueueRow);
  t.log(`a delivery is retried for ${(span / 3600).toFixed(1)} hours at least`);
  t.true(span >= 24 * 3600, `${span} s`);
  t.true(span <= 27 * 3600, `${span} s: not much longer than a day either`);
});
