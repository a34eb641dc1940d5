import type { Db } from 'pg-boss';
import { z } from 'zod';

/**
 * What the delivery side reads and records, on the deliveries' own pool (plain SQL, as the worker's other
 * statements): one delivery with its endpoint, and the outcome of each attempt, which also keeps the
 * endpoint's failure streak (an endpoint that failed every attempt for 5 days is disabled).
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

const recordedRow = z.object({ disabled: z.boolean() });

/**
 * Records one attempt: its answer (or error), what happens next, and the endpoint's streak: a success
 * ends it; a failure starts it, or, when it began `disableAfterSeconds` ago or more, disables the endpoint
 * with the reason. One statement. Resolves with whether this attempt disabled the endpoint.
 */
export async function recordAttempt(
  db: Db,
  id: string,
  outcome: Outcome,
  disableAfterSeconds: number,
): Promise<{ disabled: boolean }> {
  const { rows } = await db.executeSql(
    `with delivery as (
       update webhook_deliveries
       set attempts = attempts + 1, status = $2, last_status_code = $3, last_error = $4, last_response = $5,
           next_attempt_at = $6, delivered_at = case when $2 = 'succeeded' then now() end
       where id = $1
       returning endpoint_id
     ), prior as (
       select ep.id, ep.failing_since,
              coalesce(ep.enabled and $2 <> 'succeeded' and ep.failing_since <= now() - make_interval(secs => $7), false)
                as disabling
       from webhook_endpoints ep join delivery on ep.id = delivery.endpoint_id
     ), endpoint as (
       update webhook_endpoints ep
       set failing_since = case when $2 = 'succeeded' then null else coalesce(prior.failing_since, now()) end,
           enabled = ep.enabled and not prior.disabling,
           disabled_reason = case when prior.disabling
             then 'every attempt failed since ' || to_char(prior.failing_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                  || ' (the last: ' || left(coalesce($4, 'answered ' || $3), 200) || ')'
             else ep.disabled_reason end,
           updated_at = case when prior.disabling then now() else ep.updated_at end
       from prior
       where ep.id = prior.id and ($2 <> 'succeeded' or prior.failing_since is not null)
       returning prior.disabling as disabled
     )
     select coalesce((select disabled from endpoint), false) as disabled`,
    [
      id,
      outcome.status,
      outcome.statusCode,
      outcome.error,
      outcome.response,
      outcome.nextAttemptAt,
      disableAfterSeconds,
    ],
  );
  return recordedRow.parse(rows[0]);
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
export async function disableEndpointOf(db: Db, deliveryId: string, reason: string): Promise<void> {
  await db.executeSql(
    `update webhook_endpoints set enabled = false, disabled_reason = $2, updated_at = now()
     where id = (select endpoint_id from webhook_deliveries where id = $1)`,
    [deliveryId, reason],
  );
}
