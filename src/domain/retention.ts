import type { Db } from 'pg-boss';
import { z } from 'zod';
import { purgeOldTaskEventsSql } from './tasks/events.ts';
import { purgeExpiredIdempotencyKeysSql, purgeExpiredRateLimitsSql } from './tasks/queries.ts';

/**
 * Retention: what is kept, and for how long, deleted by the worker at each reconciliation interval
 * (docs/operations.md: Retention). Each purge is one statement; each resolves with how many rows went.
 */

const countRow = z.object({ count: z.number() });
const count = async (db: Db, text: string) => countRow.parse((await db.executeSql(text, [])).rows[0]).count;

/** Idempotency keys answer retries for 24 hours; older ones are deleted. */
const purgeExpiredIdempotencyKeys = (db: Db) => count(db, purgeExpiredIdempotencyKeysSql);

/**
 * Rate-limit counters are kept until their window ends (a minute, 15 minutes or an hour): an expired one
 * counts from zero anyway, and rate-limiter-flexible's Postgres store leaves them behind, one per address
 * and route.
 */
export const purgeExpiredRateLimits = (db: Db) => count(db, purgeExpiredRateLimitsSql);

/** Task events are kept 24 hours (the replay window of GET /tasks/events), and until the relay passed them. */
const purgeOldTaskEvents = (db: Db) => count(db, purgeOldTaskEventsSql);

/** Webhook deliveries are kept 7 days for the log; pending ones stay until they end. */
const purgeOldDeliveries = (db: Db) =>
  count(
    db,
    `with gone as (
       delete from webhook_deliveries where created_at < now() - interval '7 days' and status <> 'pending'
       returning 1)
     select count(*)::int as count from gone`,
  );

/** Every purge, one after the other: how many rows each deleted. */
export async function purgeExpired(db: Db) {
  return {
    idempotencyKeys: await purgeExpiredIdempotencyKeys(db),
    rateLimitCounters: await purgeExpiredRateLimits(db),
    taskEvents: await purgeOldTaskEvents(db),
    webhookDeliveries: await purgeOldDeliveries(db),
  };
}
