import { sql } from 'slonik';
import { z } from 'zod';
import type { Connection } from './connection.ts';
import { bossTable, COMPLETE_TASK } from './queues.ts';

/**
 * Completion jobs due further ahead than a horizon (`Timing.parkBeyondSeconds`, 10 minutes) wait "parked",
 * outside the index pg-boss's fetch walks: with many jobs due far ahead, every fetch walked them all
 * (docs/scaling.md). A parked job has pg-boss's `blocked` flag set, the one its flows use for a job waiting
 * on a parent; no pg-boss code unblocks a job without parents. The worker unparks each one well before it
 * is due. (Plans checked: test/plans.test.ts.)
 */

const countRow = z.object({ count: z.number() });

/** Parks these jobs just sent (in the sender's transaction), those due beyond the horizon. */
export async function parkJobs(db: Connection, jobIds: readonly string[], beyondSeconds: number): Promise<void> {
  await db.any(sql.type(z.object({}))`
    update ${bossTable('job')} set blocked = true
    where name = ${COMPLETE_TASK} and id = any(${sql.array(jobIds, 'uuid')}) and state = 'created' and not blocked
      and pending_dependencies = 0 and start_after > now() + make_interval(secs => ${beyondSeconds})`);
}

/** Rows per statement: each pass stays short (well inside the 30 s statement bound) however many wait. */
const BATCH = 5_000;

/**
 * Unparks up to `limit` parked jobs due within `withinSeconds` (or overdue: no worker ran). One range of
 * pg-boss's (name, state, blocked, start_after) index, walked in its order: without the `order by`, the
 * planner took the range for common and scanned the table (0.8 s at 1.2 million jobs).
 */
export const unparkStatement = (withinSeconds: number, limit = BATCH) => sql.type(countRow)`
  with unparked as (
    update ${bossTable('job')} set blocked = false
    where name = ${COMPLETE_TASK} and id in (
      select id from ${bossTable('job')}
      where name = ${COMPLETE_TASK} and state = 'created' and blocked and pending_dependencies = 0
        and start_after <= now() + make_interval(secs => ${withinSeconds})
      order by start_after limit ${limit})
    returning 1)
  select count(*)::int as count from unparked`;

/** The other range of the same index: waiting jobs due beyond `beyondSeconds`, sent unparked. */
const parkFarStatement = (beyondSeconds: number) => sql.type(countRow)`
  with parked as (
    update ${bossTable('job')} set blocked = true
    where name = ${COMPLETE_TASK} and id in (
      select id from ${bossTable('job')}
      where name = ${COMPLETE_TASK} and state = 'created' and not blocked and pending_dependencies = 0
        and start_after > now() + make_interval(secs => ${beyondSeconds})
      order by start_after limit ${BATCH})
    returning 1)
  select count(*)::int as count from parked`;

/** Runs a batched statement until a batch comes back short; resolves with the rows it changed. */
async function inBatches(db: Connection, statement: ReturnType<typeof unparkStatement>): Promise<number> {
  let total = 0;
  for (;;) {
    const count = await db.oneFirst(statement);
    total += count;
    if (count < BATCH) return total;
  }
}

/** Unparks every parked job due within the horizon (or overdue). Resolves with how many. */
export function unparkDueJobs(db: Connection, horizonSeconds: number): Promise<number> {
  return inBatches(db, unparkStatement(horizonSeconds));
}

/**
 * Parks the waiting jobs due far ahead that were sent unparked: by a web process of an earlier version
 * (during a rolling deploy, or every job of a database from before parking existed). Beyond twice the
 * horizon, so that a job is never parked and unparked by turns. Resolves with how many.
 */
export function parkFarJobs(db: Connection, horizonSeconds: number): Promise<number> {
  return inBatches(db, parkFarStatement(horizonSeconds * 2));
}
