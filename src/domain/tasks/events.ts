import { type CommonQueryMethods, sql } from 'slonik';
import { z } from 'zod';
import { idColumn, timestampColumn } from '../../db/columns.ts';

const taskEventTypes = ['created', 'completed', 'deleted', 'rescheduled'] as const;

/**
 * A place in the event history: events are ordered by (transaction, id), see sql/*_task_events.sql.
 * Written as `<tx>-<id>`, the SSE event id a client sends back as Last-Event-ID.
 */
export type EventCursor = { readonly tx: bigint; readonly id: number };

export const formatCursor = (cursor: EventCursor) => `${cursor.tx}-${cursor.id}`;

/** Null for anything that is not a cursor this service wrote. */
export function parseCursor(text: string): EventCursor | null {
  const match = /^(\d{1,20})-(\d{1,18})$/.exec(text.trim());
  if (!match) return null;
  const cursor = { tx: BigInt(match[1] ?? ''), id: Number(match[2]) };
  return cursor.tx < 2n ** 64n && Number.isSafeInteger(cursor.id) ? cursor : null;
}

/** Whether `a` comes after `b` in the event order. */
export const isAfter = (a: EventCursor, b: EventCursor) => a.tx > b.tx || (a.tx === b.tx && a.id > b.id);

const eventRow = z.object({
  tx: z.string().transform(BigInt),
  id: idColumn,
  user_id: idColumn,
  task_id: idColumn,
  type: z.enum(taskEventTypes),
  at: timestampColumn,
});
export type TaskEvent = z.output<typeof eventRow>;

/**
 * Events after `after`, in order, that no running transaction can still precede: only those of
 * transactions older than the oldest one running (a later read never finds one in front of these).
 * `userId` narrows them to one user's tasks.
 */
export function readEvents(
  db: CommonQueryMethods,
  after: EventCursor,
  filter: { userId?: number | undefined },
  limit: number,
) {
  const user = filter.userId === undefined ? sql.fragment`true` : sql.fragment`user_id = ${filter.userId}`;
  return db.any(sql.type(eventRow)`
    select tx_id::text as tx, id, user_id, task_id, type, at from task_events
    where (tx_id, id) > (${after.tx.toString()}::xid8, ${after.id}::bigint)
      and tx_id < pg_snapshot_xmin(pg_current_snapshot())
      and ${user}
    order by tx_id, id
    limit ${limit}`);
}

const txRow = z.object({ tx: z.string() });

/**
 * Where a reader that wants only what happens from now on starts: before every transaction still
 * running. (It may also see a few events that committed just before, never miss one after.)
 */
export async function currentCursor(db: CommonQueryMethods): Promise<EventCursor> {
  const tx = await db.oneFirst(sql.type(txRow)`select pg_snapshot_xmin(pg_current_snapshot())::text as tx`);
  return { tx: BigInt(tx), id: 0 };
}
