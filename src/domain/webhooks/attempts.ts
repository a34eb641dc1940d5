import type { Db } from 'pg-boss';
import { z } from 'zod';

/**
 * What the delivery side reads and records, on pg-boss's pool (plain SQL, as the worker's other
 * statements): one delivery with its endpoint, and the outcome of each attempt.
 */

const deliveryRow = z.object({
  id: z.string(),
  body: z.string(),
  status: z.string(),
  event_at: z.date(),
  url: z.string(),
  enabled: z.boolean(),
  secrets: z.array(z.string()),
});
export type PendingDelivery = z.output<typeof deliveryRow>;
const countRow = z.object({ count: z.number() });

/** The delivery and what is needed to send it: the endpoint's URL and the secrets that sign now. */
export async function loadDelivery(db: Db, id: string): Promise<PendingDelivery | null> {
  const { rows } = await db.executeSql(
    `select d.id::text, d.body, d.status, d.event_at, ep.url, ep.enabled,
            array_remove(array[ep.secret, case when ep.previous_secret_until > now() then ep.previous_secret end], null)
              as secrets
     from webhook_deliveries d join webhook_endpoints ep on ep.id = d.endpoint_id
     where d.id = $1`,
    [id],
  );
  return rows[0] ? deliveryRow.parse(rows[0]) : null;
}

export type Outcome = {
  status: 'pending' | 'succeeded' | 'failed';
  statusCode: number | null;
  error: string | null;
  response: string | null;
  nextAttemptAt: Date | null;
};

/** Records one attempt: its answer (or error), and what happens next. */
export async function recordAttempt(db: Db, id: string, outcome: Outcome): Promise<void> {
  await db.executeSql(
    `update webhook_deliveries
     set attempts = attempts + 1, status = $2, last_status_code = $3, last_error = $4, last_response = $5,
         next_attempt_at = $6, delivered_at = case when $2 = 'succeeded' then now() end
     where id = $1`,
    [id, outcome.status, outcome.statusCode, outcome.error, outcome.response, outcome.nextAttemptAt],
  );
}

/** A delivery that will not be attempted (its endpoint was disabled meanwhile). */
export async function dropDelivery(db: Db, id: string, reason: string): Promise<void> {
  await db.executeSql(
    `update webhook_deliveries set status = 'failed', last_error = $2, next_attempt_at = null
     where id = $1 and status = 'pending'`,
    [id, reason],
  );
}

/** 410 Gone: the endpoint of this delivery is disabled; its pending deliveries stop at their next turn. */
export async function disableEndpointOf(db: Db, deliveryId: string): Promise<void> {
  await db.executeSql(
    `update webhook_endpoints set enabled = false, updated_at = now()
     where id = (select endpoint_id from webhook_deliveries where id = $1)`,
    [deliveryId],
  );
}

/** Deliveries are kept 7 days for the log; pending ones stay until they end. Resolves with how many went. */
export async function purgeOldDeliveries(db: Db): Promise<number> {
  const { rows } = await db.executeSql(
    `with gone as (
       delete from webhook_deliveries where created_at < now() - interval '7 days' and status <> 'pending'
       returning 1)
     select count(*)::int as count from gone`,
    [],
  );
  return countRow.parse(rows[0]).count;
}
