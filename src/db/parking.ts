import { BOSS_SCHEMA, COMPLETE_TASK } from './queues.ts';

type Db = { executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }> };

/**
 * Completion jobs due further ahead than this wait "parked". pg-boss fetches in (priority, created_on)
 * order, walking an index of every waiting job and skipping those not due yet: with many jobs due days
 * or months ahead (created long ago, so first in that order), every fetch walked them all (130 to 350 ms
 * per fetch at 500,000 waiting jobs; bench/scale.ts). A parked job has pg-boss's `blocked` flag set, the
 * one its flows use for a job waiting on a parent; that index leaves blocked jobs out, and no pg-boss
 * code unblocks a job without parents. The worker unparks each one well before it is due.
 */
export const PARK_BEYOND_SECONDS = 600;
/** How often a worker unparks the jobs coming due within PARK_BEYOND_SECONDS. */
export const UNPARK_INTERVAL_SECONDS = 60;

const PARK_SQL = `
  update ${BOSS_SCHEMA}.job set blocked = true
  where name = $1 and id = $2 and state = 'created' and not blocked and pending_dependencies = 0
    and start_after > now() + make_interval(secs => $3)`;

/** Parks the job just sent (in the sender's transaction) when it is due beyond the horizon. */
export async function parkIfFar(db: Db, jobId: string, startAfter: Date): Promise<void> {
  if (startAfter.getTime() - Date.now() <= PARK_BEYOND_SECONDS * 1000) return;
  await db.executeSql(PARK_SQL, [COMPLETE_TASK, jobId, PARK_BEYOND_SECONDS]);
}

// One range of pg-boss's (name, state, blocked, start_after) index, walked in its order: without the
// `order by`, the planner took the range for common (it multiplies the two conditions' estimates) and
// scanned the table, 0.8 s at 1.2 million jobs.
export const UNPARK_SQL = `
  with unparked as (
    update ${BOSS_SCHEMA}.job set blocked = false
    where name = $1 and id in (
      select id from ${BOSS_SCHEMA}.job
      where name = $1 and state = 'created' and blocked and pending_dependencies = 0
        and start_after <= now() + make_interval(secs => $2)
      order by start_after limit $3)
    returning 1)
  select count(*)::int as count from unparked`;

/** Rows per statement: each pass stays short (well inside the 30 s statement bound) however many wait. */
const BATCH = 5_000;

/** Runs a batched statement until a batch comes back short; resolves with the rows it changed. */
async function inBatches(db: Db, text: string): Promise<number> {
  let total = 0;
  for (;;) {
    const { rows } = await db.executeSql(text, [COMPLETE_TASK, PARK_BEYOND_SECONDS, BATCH]);
    const count = Number((rows[0] as { count?: number } | undefined)?.count ?? 0);
    total += count;
    if (count < BATCH) return total;
  }
}

/** Unparks every parked job due within the horizon (or overdue: no worker ran). Resolves with how many. */
export function unparkDueJobs(db: Db): Promise<number> {
  return inBatches(db, UNPARK_SQL);
}

// The other range of the same index; twice the horizon, so that a job is never parked and unparked by turns.
const PARK_FAR_SQL = `
  with parked as (
    update ${BOSS_SCHEMA}.job set blocked = true
    where name = $1 and id in (
      select id from ${BOSS_SCHEMA}.job
      where name = $1 and state = 'created' and not blocked and pending_dependencies = 0
        and start_after > now() + make_interval(secs => $2 * 2)
      order by start_after limit $3)
    returning 1)
  select count(*)::int as count from parked`;

/**
 * Parks the waiting jobs due far ahead that were sent unparked: by a web process of an earlier version
 * (during a rolling deploy, or every job of a database from before parking existed). Resolves with how many.
 */
export function parkFarJobs(db: Db): Promise<number> {
  return inBatches(db, PARK_FAR_SQL);
}
