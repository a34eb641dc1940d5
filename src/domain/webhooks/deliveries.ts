import { type DatabasePool, sql } from 'slonik';
import { z } from 'zod';
import { bossDb } from '../../db/bossDb.ts';
import { idColumn } from '../../db/columns.ts';
import { type Boss, DELIVER_WEBHOOK } from '../../db/queues.ts';
import { conflict, notFound } from '../../errors.ts';
import { keysetPage } from '../keysetPage.ts';
import type { Actor } from '../users/user.ts';
import { getEndpoint } from './endpoints.ts';
import { deliveryJob } from './outbox.ts';
import { type Delivery, deliveryRow } from './webhook.ts';

const columns = sql.fragment`
  id::text, event_type, task_id, status, attempts, last_status_code, last_error, last_response, next_attempt_at,
  created_at, delivered_at`;
const pageRow = deliveryRow.extend({ seq: z.bigint().transform(String) });

/**
 * One page of an endpoint's deliveries, newest first, and the cursor of the next page (null on the last).
 * @throws AppError 404 when the endpoint does not exist or is someone else's.
 */
export async function listDeliveryPage(
  db: DatabasePool,
  actor: Actor,
  endpointId: number,
  query: { limit: number; cursor?: number | undefined },
): Promise<{ deliveries: Delivery[]; nextCursor: string | null }> {
  await getEndpoint(db, actor, endpointId);
  const rows = await db.any(sql.type(pageRow)`
    select ${columns}, seq from webhook_deliveries
    where endpoint_id = ${endpointId}
      ${query.cursor === undefined ? sql.fragment`` : sql.fragment`and seq < ${query.cursor}`}
    order by seq desc
    limit ${query.limit + 1}`); // one more than asked tells whether there is a next page
  const { page, nextCursor } = keysetPage(rows, query.limit, (last) => last.seq);
  return { deliveries: page.map(({ seq: _seq, ...delivery }) => delivery), nextCursor };
}

/**
 * Sends a failed delivery again, as a new series of attempts under the same webhook-id: it is pending
 * again, and its job is written in the same transaction.
 * @throws AppError 404 when the endpoint or the delivery does not exist or is someone else's; 409 when
 * the delivery has not failed.
 */
export async function retryDelivery(
  deps: { db: DatabasePool; boss: Boss },
  actor: Actor,
  endpointId: number,
  deliveryId: string,
): Promise<Delivery> {
  await getEndpoint(deps.db, actor, endpointId);
  return deps.db.transaction(async (tx) => {
    const current = await tx.maybeOne(sql.type(deliveryRow)`
      select ${columns} from webhook_deliveries
      where id = ${deliveryId}::uuid and endpoint_id = ${endpointId}
      for update`);
    if (!current) throw notFound('delivery');
    if (current.status !== 'failed')
      throw conflict(`only a failed delivery can be retried (this one is ${current.status})`);
    const { owner, ...delivery } = await tx.one(sql.type(deliveryRow.extend({ owner: idColumn }))`
      update webhook_deliveries set status = 'pending', next_attempt_at = now()
      where id = ${deliveryId}::uuid
      returning ${columns}, user_id as owner`);
    const { data, group } = deliveryJob({ id: deliveryId, endpoint_id: endpointId, user_id: owner });
    await deps.boss.send(DELIVER_WEBHOOK, data, { db: bossDb(tx), group });
    return delivery;
  });
}
