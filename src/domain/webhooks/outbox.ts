import { sql } from 'slonik';
import { z } from 'zod';
import { inTransaction } from '../../db/bossTransaction.ts';
import { onBossDb } from '../../db/connection.ts';
import { type Boss, DELIVER_WEBHOOK } from '../../db/queues.ts';

/**
 * The transactional outbox's relay. Task events are written in the transaction of the change they record
 * (sql/*_task_events.sql), in a gap-free (transaction, id) order. The relay reads them after the place it
 * stored, only once no older transaction is still running (so none can appear later in front of them),
 * turns each event of a subscribed type into one delivery per enabled endpoint of its user, sends the
 * deliveries' jobs, and stores its new place: all in ONE transaction. A crash before the commit leaves
 * everything as it was, so no committed event is left undelivered, and a rolled-back change had no event to
 * deliver. Its place's row is locked (SKIP LOCKED) for the whole transaction: one relay works at a time, and
 * the unique (endpoint, event) key would refuse a second copy anyway.
 */

/** Events read per transaction. */
const RELAY_BATCH = 500;

const ISO = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"';
const endpointsRow = z.object({ endpoints: z.boolean() });

/**
 * Whether any enabled endpoint exists; with none, there is nothing to deliver, and the relay's place jumps
 * to the newest event instead.
 */
const skipIfNoEndpoint = () => sql.type(endpointsRow)`
  with position as (select 1 from webhook_relay where id = 1 for update skip locked),
  any_endpoint as (select exists (select 1 from webhook_endpoints where enabled) as yes),
  newest as (
    select tx_id, id from task_events
    where tx_id < pg_snapshot_xmin(pg_current_snapshot())
    order by tx_id desc, id desc limit 1),
  moved as (
    update webhook_relay r set tx = newest.tx_id, event_id = newest.id
    from newest, position, any_endpoint
    where r.id = 1 and not any_endpoint.yes and (newest.tx_id, newest.id) > (r.tx, r.event_id)
    returning 1)
  select yes as endpoints from any_endpoint`;

const relayRow = z.object({
  events: z.number(),
  deliveries: z.array(z.object({ id: z.string(), endpoint_id: z.number(), user_id: z.number() })),
  moved: z.number(),
  waiting: z.boolean(),
});

/**
 * One step of the relay: the next `batch` events after its place become deliveries, and its place moves
 * on. `data` is the task as the API shows it at the relay's read; a deleted task's (or a task gone before
 * the relay came) is `{id, user_id}`. `waiting` says that committed events stand behind an older
 * transaction still running (in any database of the server: transaction ids are the server's), so they can
 * be relayed as soon as it ends. (Plan checked: test/plans.test.ts.)
 */
export const relayStep = (batch: number) => sql.type(relayRow)`
  with position as (
    select tx, event_id from webhook_relay where id = 1 for update skip locked
  ), batch as (
    select e.tx_id, e.id, e.user_id, e.task_id, e.type, e.at
    from task_events e, position p
    where (e.tx_id, e.id) > (p.tx, p.event_id) and e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
    order by e.tx_id, e.id
    limit ${batch}
  ), inserted as (
    insert into webhook_deliveries (id, endpoint_id, user_id, event_tx, event_id, event_type, task_id, event_at, body)
    select gen_random_uuid(), ep.id, b.user_id, b.tx_id, b.id, 'task.' || b.type, b.task_id, b.at,
           json_build_object(
             'type', 'task.' || b.type,
             'timestamp', to_char(b.at at time zone 'UTC', ${ISO}),
             'data', case when b.type = 'deleted' or t.id is null
                          then json_build_object('id', b.task_id, 'user_id', b.user_id)
                          else task_json(t) end)::text
    from batch b
    join webhook_endpoints ep
      on ep.user_id = b.user_id and ep.enabled and ('task.' || b.type) = any(ep.events) and ep.created_at <= b.at
    left join tasks t on t.id = b.task_id and b.type <> 'deleted'
    on conflict (endpoint_id, event_tx, event_id) do nothing
    returning id, endpoint_id, user_id
  ), moved as (
    update webhook_relay r set tx = last.tx_id, event_id = last.id
    from (select tx_id, id from batch order by tx_id desc, id desc limit 1) last
    where r.id = 1
    returning 1
  )
  select (select count(*) from batch)::int as events,
         coalesce((select json_agg(json_build_object('id', id, 'endpoint_id', endpoint_id, 'user_id', user_id))
                   from inserted), '[]') as deliveries,
         (select count(*) from moved)::int as moved,
         exists (select 1 from task_events e, position p
                 where (e.tx_id, e.id) > (p.tx, p.event_id)
                   and e.tx_id >= pg_snapshot_xmin(pg_current_snapshot())) as waiting`;

/** What a delivery job carries: the delivery, and its endpoint (whose limit of attempts at once it takes). */
export type DeliveryJobData = { deliveryId: string; endpointId: number };

/**
 * A delivery's job, grouped by its owner: pg-boss then runs at most the owner's share of their jobs at
 * once, across every worker (`groupConcurrency`, src/delivery/deliveries.ts).
 */
export const deliveryJob = (delivery: { id: string; endpoint_id: number; user_id: number }) => ({
  data: { deliveryId: delivery.id, endpointId: delivery.endpoint_id } satisfies DeliveryJobData,
  group: { id: String(delivery.user_id) },
});

/**
 * One relay step in one transaction, on `boss`'s pool. Resolves with how many events it read and how many
 * deliveries it wrote (none when another relay holds the place, or when there is nothing new), whether
 * any enabled endpoint exists, and whether committed events wait behind an older running transaction.
 */
export function relayEvents(
  boss: Boss,
  batch = RELAY_BATCH,
): Promise<{ events: number; deliveries: number; endpoints: boolean; waiting: boolean }> {
  return inTransaction(boss, async (db) => {
    const connection = onBossDb(db);
    if (!(await connection.oneFirst(skipIfNoEndpoint())))
      return { events: 0, deliveries: 0, endpoints: false, waiting: false };
    const { events, deliveries, waiting } = await connection.one(relayStep(batch));
    if (deliveries.length > 0) await boss.insert(DELIVER_WEBHOOK, deliveries.map(deliveryJob), { db });
    return { events, deliveries: deliveries.length, endpoints: true, waiting };
  });
}
