import { PgBoss } from 'pg-boss';
import type { DatabasePool } from 'slonik';
import { withApplicationName } from '../db/applicationName.ts';
import { bossDb } from '../db/bossDb.ts';
import { BOSS_SCHEMA, type Boss, COMPLETE_TASK, DELIVER_WEBHOOK, DELIVER_WEBHOOK_FAILED } from '../db/queues.ts';
import type { Logger } from '../log.ts';

type Options = {
  url: string;
  log: Logger;
  /** `deliveries`: a worker's second pg-boss, for webhook deliveries only (see startDeliveryBoss). */
  role: 'web' | 'worker' | 'all' | 'migrate' | 'deliveries';
  /** Connections of pg-boss's own pool; unused with `api`. */
  poolSize: number;
  /** Client-side bound on each statement, as for the API pool: a partition fails queries instead of hanging. */
  queryTimeoutMs?: number;
  /**
   * A web process's API pool: pg-boss then runs its few statements there (it only writes jobs, inside the
   * API's own transactions) and opens no pool of its own. It neither installs its schema nor works jobs.
   */
  api?: DatabasePool;
};

/**
 * Retries of a webhook delivery after its first attempt. pg-boss waits between 2^n/2 and 2^n seconds after
 * failure n (n from 0; capped at an hour): 1.1 to 2 hours of doubling up to the cap, then 23 hourly tries,
 * so a delivery is tried for 24.1 to 25.1 hours before it fails.
 */
const WEBHOOK_RETRY_LIMIT = 36;

/** A worker that stops heartbeating (killed, frozen) loses its jobs after this; they are retried elsewhere. */
const HEARTBEAT_SECONDS = 10;
/** How often the supervisor looks for expired and stale jobs; with the heartbeat, a crash costs about 15 s. */
const SUPERVISE_SECONDS = 5;

/**
 * Starts pg-boss on its own schema (`pgboss`) and makes sure the task queue exists. pg-boss installs and
 * migrates its schema itself, under an advisory lock. Maintenance (expiry, retention) runs only where
 * jobs are worked, so a web-only process does nothing in the background.
 */
export async function startBoss({ url, log, role, poolSize, queryTimeoutMs, api }: Options): Promise<Boss> {
  const working = role === 'worker' || role === 'all';
  const connection = api
    ? { db: bossDb(api), migrate: false }
    : {
        connectionString: url,
        application_name: `task-manager-${role}`,
        max: poolSize,
        connectionTimeoutMillis: 5_000,
        // Passed through to pg's Pool: keepalive notices a dead peer on idle connections.
        ...({ keepAlive: true, ...(queryTimeoutMs && { query_timeout: queryTimeoutMs }) } as object),
      };
  const boss = new PgBoss({
    ...connection,
    schema: BOSS_SCHEMA,
    // The deliveries' pg-boss neither installs nor supervises: the worker's own does both.
    ...(role === 'deliveries' && { migrate: false }),
    supervise: working,
    superviseIntervalSeconds: SUPERVISE_SECONDS,
    monitorIntervalSeconds: SUPERVISE_SECONDS,
    schedule: false,
  });
  boss.on('error', (error) => log.error({ err: error }, 'pg-boss error'));
  boss.on('warning', (warning) => log.warn({ warning }, 'pg-boss warning'));
  await boss.start();
  // The queue is made (and kept up to date) where pg-boss owns its pool: the release step and workers.
  if (!api && role !== 'deliveries') {
    await boss.createQueue(COMPLETE_TASK, {
      // A completion that fails (database hiccup) is tried again: 1 s, 2 s, 4 s ... at most a minute apart.
      retryLimit: 20,
      retryDelay: 1,
      retryBackoff: true,
      retryDelayMax: 60,
      expireInSeconds: 60,
      heartbeatSeconds: HEARTBEAT_SECONDS,
      // Jobs wait in `created` state until due; keep them far longer than the longest allowed delay.
      retentionSeconds: 60 * 60 * 24 * 400,
      // Completed jobs stay a week for operators to look at, then pg-boss removes them.
      deleteAfterSeconds: 60 * 60 * 24 * 7,
    });
    // Webhook deliveries: pg-boss retries a failed attempt with exponential backoff and jitter (about 1 s,
    // doubling, at most an hour apart) for about 25 hours, then the job fails and is copied to the dead
    // letter queue for operators. See src/delivery/deliveries.ts.
    await boss.createQueue(DELIVER_WEBHOOK_FAILED, { retentionSeconds: 60 * 60 * 24 * 7 });
    await boss.createQueue(DELIVER_WEBHOOK, {
      retryLimit: WEBHOOK_RETRY_LIMIT,
      retryDelay: 1,
      retryBackoff: true,
      retryDelayMax: 60 * 60,
      expireInSeconds: 60, // an attempt ends within 10 s
      heartbeatSeconds: HEARTBEAT_SECONDS, // a worker killed mid-attempt loses its jobs after this
      retentionSeconds: 60 * 60 * 24 * 2,
      deleteAfterSeconds: 60 * 60 * 24 * 7,
      deadLetter: DELIVER_WEBHOOK_FAILED,
    });
    // createQueue leaves an existing queue as it is, and updateQueue cannot set a heartbeat: carry it to
    // databases whose queue was made before it existed.
    await boss
      .getDb()
      .executeSql(
        `update ${BOSS_SCHEMA}.queue set heartbeat_seconds = $2 where name = $1 and heartbeat_seconds is distinct from $2`,
        [COMPLETE_TASK, HEARTBEAT_SECONDS],
      );
  }
  return boss;
}

/**
 * The webhook deliveries' own pg-boss in a worker process: its own pool of `poolSize` connections, so that
 * slow endpoints and a storm of deliveries never wait for, nor hold, a connection the completions need.
 * It works no queue through pg-boss's `work` (src/delivery/deliveries.ts fetches) and runs no maintenance.
 */
export const startDeliveryBoss = (options: Omit<Options, 'role' | 'api'>) =>
  // Its connections carry a name of their own (a name in the URL wins over pg's option).
  startBoss({ ...options, url: withApplicationName(options.url, 'task-manager-deliveries'), role: 'deliveries' });
