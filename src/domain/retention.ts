import { sql } from 'slonik';
import { z } from 'zod';
import type { Connection } from '../db/connection.ts';

/**
 * Retention: what is kept, and for how long, deleted by the worker at each reconciliation interval
 * (docs/operations.md: Retention). Each purge is one statement; each resolves with how many rows went.
 */

const countRow = z.object({ count: z.number() });

/** Idempotency keys answer retries for 24 hours; older ones are deleted. */
const purgeExpiredIdempotencyKeys = (db: Connection) =>
  db.oneFirst(sql.type(countRow)`
    with gone as (delete from idempotency_keys where created_at < now() - interval '24 hours' returning 1)
    select count(*)::int as count from gone`);

/**
 * Rate-limit counters are kept until their window ends (a minute, 15 minutes or an hour): an expired one
 * counts from zero anyway, and rate-limiter-flexible's Postgres store leaves them behind, one per address
 * and route (`expire` is epoch milliseconds).
 */
export const purgeExpiredRateLimits = (db: Connection) =>
  db.oneFirst(sql.type(countRow)`
    with gone as (delete from rate_limits where expire < extract(epoch from now()) * 1000 returning 1)
    select count(*)::int as count from gone`);

/**
 * Task events are kept 24 hours (the replay window of GET /tasks/events): a stream can resume across a day
 * of absence, not more; and until the webhook relay passed them (src/domain/webhooks/outbox.ts).
 */
export const purgeOldTaskEvents = (db: Connection) =>
  db.oneFirst(sql.type(countRow)`
    with gone as (
      delete from task_events
      where at < now() - interval '24 hours'
        and (tx_id, id) <= (select tx, event_id from webhook_relay where id = 1)
      returning 1)
    select count(*)::int as count from gone`);

/** Webhook deliveries are kept 7 days for the log; pending ones stay until they end. */
const purgeOldDeliveries = (db: Connection) =>
  db.oneFirst(sql.type(countRow)`
    with gone as (
      delete from webhook_deliveries where created_at < now() - interval '7 days' and status <> 'pending'
      returning 1)
    select count(*)::int as count from gone`);

/** Every purge, one after the other: how many rows each deleted. */
export async function purgeExpired(db: Connection) {
  return {
    idempotencyKeys: await purgeExpiredIdempotencyKeys(db),
    rateLimitCounters: await purgeExpiredRateLimits(db),
    taskEvents: await purgeOldTaskEvents(db),
    webhookDeliveries: await purgeOldDeliveries(db),
  };
}
