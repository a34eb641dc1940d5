import { type CommonQueryMethods, sql } from 'slonik';
import { z } from 'zod';
import type { Task } from './task.ts';

/** The response as it was first sent (a task, or a schedule): our own JSON, written by `claimIdempotencyKey`. */
const storedTask = z.custom<Task>((value) => typeof value === 'object' && value !== null && 'id' in value);
const claimedRow = z.object({ claimed: z.boolean() });
const storedRow = z.object({ fingerprint: z.string(), response: storedTask });

/**
 * Records the response under (user, key), or takes over a record older than 24 hours. False when a live
 * record exists; while another transaction holds the key uncommitted, this waits for its outcome.
 */
export async function claimIdempotencyKey(
  db: CommonQueryMethods,
  entry: { userId: number; key: string; fingerprint: string; response: { id: number } },
): Promise<boolean> {
  const claimed = await db.maybeOne(sql.type(claimedRow)`
    insert into idempotency_keys (user_id, key, fingerprint, response)
    values (${entry.userId}, ${entry.key}, ${entry.fingerprint}, ${sql.jsonb(entry.response)})
    on conflict (user_id, key) do update
      set fingerprint = excluded.fingerprint, response = excluded.response, created_at = now()
      where idempotency_keys.created_at < now() - interval '24 hours'
    returning true as claimed`);
  return claimed !== null;
}

export function findIdempotentResponse(db: CommonQueryMethods, userId: number, key: string) {
  return db.maybeOne(sql.type(storedRow)`
    select fingerprint, response from idempotency_keys
    where user_id = ${userId} and key = ${key} and created_at >= now() - interval '24 hours'`);
}
