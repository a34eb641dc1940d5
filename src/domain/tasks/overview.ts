import { type CommonQueryMethods, sql } from 'slonik';
import { z } from 'zod';
import { BOSS_SCHEMA, COMPLETE_TASK } from '../../db/queues.ts';

export const queueOverviewRow = z
  .object({
    pending: z.number().int().meta({ description: 'Tasks not completed yet' }),
    due_next_minute: z.number().int().meta({ description: 'Pending tasks due within a minute (or overdue)' }),
    failed_jobs: z
      .number()
      .int()
      .meta({ description: 'Completion jobs that failed every retry (reconciliation gives their tasks new ones)' }),
    failed_deliveries: z
      .number()
      .int()
      .meta({ description: 'Webhook deliveries that failed every retry, kept 7 days' }),
  })
  .meta({ id: 'QueueOverview' });

/** The queue at a glance, for admins: counts that each read a partial index or a small table. */
export function queueOverview(db: CommonQueryMethods) {
  return db.one(sql.type(queueOverviewRow)`
    select
      (select count(*)::int from tasks where status = 'pending') as pending,
      (select count(*)::int from tasks where status = 'pending' and due_at <= now() + interval '1 minute')
        as due_next_minute,
      (select count(*)::int from ${sql.identifier([BOSS_SCHEMA, 'job'])} where name = ${COMPLETE_TASK} and state = 'failed') as failed_jobs,
      (select count(*)::int from webhook_deliveries where status = 'failed') as failed_deliveries`);
}
