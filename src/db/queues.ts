import type { PgBoss } from 'pg-boss';
import { sql } from 'slonik';

// pg-boss's queues, below the domain with the other database parts: the domain sends and removes jobs in
// its own transactions; the job side (src/jobs/) starts pg-boss and works the queues.

/** pg-boss's schema: its tables are `pgboss.job`, `pgboss.queue`...; SQL of ours names them through this. */
export const BOSS_SCHEMA = 'pgboss';

/** One of pg-boss's tables, as an identifier for a slonik statement: `${bossTable('job')}`. */
export const bossTable = (name: 'job' | 'queue') => sql.identifier([BOSS_SCHEMA, name]);

/** The queue whose jobs complete tasks; each job is `{ taskId }`, due at the task's `due_at`. */
export const COMPLETE_TASK = 'complete-task';

/** The queue whose jobs deliver one webhook each: `{ deliveryId }`; pg-boss retries them with backoff. */
export const DELIVER_WEBHOOK = 'deliver-webhook';
/** Where deliveries that failed every retry end up too, for operators (pg-boss's dead letter queue). */
export const DELIVER_WEBHOOK_FAILED = 'deliver-webhook-failed';

export type Boss = PgBoss;
