import { PgBoss } from 'pg-boss';
import type { DatabasePool } from 'slonik';
import { withApplicationName } from '../db/applicationName.ts';
import { bossDb } from '../db/bossDb.ts';
import { BOSS_SCHEMA, type Boss, COMPLETE_TASK, DELIVER_WEBHOOK, DELIVER_WEBHOOK_FAILED } from '../db/queues.ts';
import type { Logger } from '../log.ts';
import { PRODUCTION_TIMING, type RetryPolicy, type Timing } from '../timing.ts';

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
  /** The queues' retry policies and heartbeat, and the supervisor's interval (production: PRODUCTION_TIMING). */
  timing?: Timing;
};

/**
 * Starts pg-boss on its own schema (`pgboss`) and makes sure the task queue exists. pg-boss installs and
 * migrates its schema itself, under an advisory lock. Maintenance (expiry, retention) runs only where
 * jobs are worked, so a web-only process does nothing in the background.
 */
export async function startBoss({
  url,
  log,
  role,
  poolSize,
  queryTimeoutMs,
  api,
  timing = PRODUCTION_TIMING,
}: Options): Promise<Boss> {
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
    superviseIntervalSeconds: timing.superviseSeconds,
    monitorIntervalSeconds: timing.superviseSeconds,
    schedule: false,
  });
  boss.on('error', (error) => log.error({ err: error }, 'pg-boss error'));
  boss.on('warning', (warning) => log.warn({ warning }, 'pg-boss warning'));
  await boss.start();
  // The queues are made, and kept to this code's policies, where pg-boss owns its pool: the release step and
  // workers. (createQueue leaves an existing queue as it is.)
  if (!api && role !== 'deliveries') await applyQueuePolicies(boss, timing);
  return boss;
}

const retry = (policy: RetryPolicy) => ({
  retryLimit: policy.limit,
  retryDelay: policy.delaySeconds,
  retryBackoff: true,
  retryDelayMax: policy.maxDelaySeconds,
});

/** Each queue with its policy: made when missing, brought to the policy when it differs. */
async function applyQueuePolicies(boss: Boss, timing: Timing): Promise<void> {
  const policies = {
    [COMPLETE_TASK]: {
      ...retry(timing.completionRetry),
      expireInSeconds: 60,
      heartbeatSeconds: timing.heartbeatSeconds,
      // Jobs wait in `created` state until due; keep them far longer than the longest allowed delay.
      retentionSeconds: 60 * 60 * 24 * 400,
      // Completed jobs stay a week for operators to look at, then pg-boss removes them.
      deleteAfterSeconds: 60 * 60 * 24 * 7,
    },
    // Where deliveries that failed every retry are copied, for operators (pg-boss's dead letter queue).
    [DELIVER_WEBHOOK_FAILED]: { retentionSeconds: 60 * 60 * 24 * 7 },
    // Webhook deliveries: a failed attempt is retried with exponential backoff and jitter, then the job fails
    // and is copied to the dead letter queue (src/delivery/deliveries.ts).
    [DELIVER_WEBHOOK]: {
      ...retry(timing.webhookRetry),
      expireInSeconds: 60, // an attempt ends within 10 s
      heartbeatSeconds: timing.heartbeatSeconds, // a worker killed mid-attempt loses its jobs after this
      retentionSeconds: 60 * 60 * 24 * 2,
      deleteAfterSeconds: 60 * 60 * 24 * 7,
      deadLetter: DELIVER_WEBHOOK_FAILED,
    },
  };
  for (const [name, policy] of Object.entries(policies)) {
    await boss.createQueue(name, policy);
    await boss.updateQueue(name, policy);
  }
}

/**
 * The webhook deliveries' own pg-boss in a worker process: its own pool of `poolSize` connections, so that
 * slow endpoints and a storm of deliveries never wait for, nor hold, a connection the completions need.
 * It works no queue through pg-boss's `work` (src/delivery/deliveries.ts fetches) and runs no maintenance.
 */
export const startDeliveryBoss = (options: Omit<Options, 'role' | 'api'>) =>
  // Its connections carry a name of their own (a name in the URL wins over pg's option).
  startBoss({ ...options, url: withApplicationName(options.url, 'task-manager-deliveries'), role: 'deliveries' });
