import { sql } from 'slonik';
import { z } from 'zod';
import { timestampColumn } from '../../db/columns.ts';
import type { Connection } from '../../db/connection.ts';

/**
 * What the delivery side reads and records, on the deliveries' own pool: one delivery with its endpoint, and the outcome of each attempt, which also keeps the
 * endpoint's failure streak (an endpoint that failed every attempt for 5 days is disabled).
 */

const deliveryRow = z.object({
  id: z.string(),
  body: z.string(),
  status: z.string(),
  event_at: timestampColumn,
  url: z.string(),
  enabled: z.boolean(),
  secrets: z.array(z.string()),
});
export type PendingDelivery = z.output<typeof deliveryRow>;

/** The delivery and what is needed to send it: the endpoint's URL and the secrets that sign now. */
export function loadDelivery(db: Connection, id: string): Promise<PendingDelivery | null> {
  return db.maybeOne(sql.type(deliveryRow)`
    select d.id::text, d.body, d.status, d.event_at, ep.url, ep.enabled,
           array_remove(array[ep.secret, case when ep.previous_secret_until > now() then ep.previous_secret end], null)
             as secrets
    from webhook_deliveries d join webhook_endpoints ep on ep.id = d.endpoint_id
    where d.id = ${id}`);
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
export function recordAttempt(
  db: Connection,
  id: string,
  outcome: Outcome,
  disableAfterSeconds: number,
): Promise<{ disabled: boolean }> {
  const { status, statusCode, error, response, nextAttemptAt } = outcome;
  return db.one(sql.type(recordedRow)`
    with delivery as (
      update webhook_deliveries
      set attempts = attempts + 1, status = ${status}, last_status_code = ${statusCode}, last_error = ${error},
          last_response = ${response}, next_attempt_at = ${nextAttemptAt?.toISOString() ?? null}::timestamptz,
          delivered_at = case when ${status} = 'succeeded' then now() end
      where id = ${id}
      returning endpoint_id
    ), prior as (
      select ep.id, ep.failing_since,
             coalesce(ep.enabled and ${status} <> 'succeeded'
                      and ep.failing_since <= now() - make_interval(secs => ${disableAfterSeconds}), false) as disabling
      from webhook_endpoints ep join delivery on ep.id = delivery.endpoint_id
    ), endpoint as (
      update webhook_endpoints ep
      set failing_since = case when ${status} = 'succeeded' then null else coalesce(prior.failing_since, now()) end,
          enabled = ep.enabled and not prior.disabling,
          disabled_reason = case when prior.disabling
            then 'every attempt failed since ' || to_char(prior.failing_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                 || ' (the last: ' || left(coalesce(${error}, 'answered ' || ${statusCode}::int), 200) || ')'
            else ep.disabled_reason end,
          updated_at = case when prior.disabling then now() else ep.updated_at end
      from prior
      where ep.id = prior.id and (${status} <> 'succeeded' or prior.failing_since is not null)
      returning prior.disabling as disabled
    )
    select coalesce((select disabled from endpoint), false) as disabled`);
}

/** A delivery that will not be attempted (its endpoint was disabled meanwhile). */
export async function dropDelivery(db: Connection, id: string, reason: string): Promise<void> {
  await db.any(sql.type(z.object({}))`
    update webhook_deliveries set status = 'failed', last_error = ${reason}, next_attempt_at = null
    where id = ${id} and status = 'pending'`);
}

/** 410 Gone: the endpoint of this delivery is disabled; its pending deliveries stop at their next turn. */
export async function disableEndpointOf(db: Connection, deliveryId: string, reason: string): Promise<void> {
  await db.any(sql.type(z.object({}))`
    update webhook_endpoints set enabled = false, disabled_reason = ${reason}, updated_at = now()
    where id = (select endpoint_id from webhook_deliveries where id = ${deliveryId})`);
}
