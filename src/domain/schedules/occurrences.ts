import { randomUUID } from 'node:crypto';
import type { Db as BossDb } from 'pg-boss';
import type { Connection } from '../../db/connection.ts';
import { type Boss, COMPLETE_TASK } from '../../db/queues.ts';
import { sendCompletionJobs } from '../tasks/completionJob.ts';
import { deleteTaskRowToken, insertOccurrences } from '../tasks/queries.ts';
import type { Task } from '../tasks/task.ts';
import { countFiresBetween, nextFireAfter, parseCron } from './cron.ts';
import { lockPendingOccurrence, lockSchedules, moveSchedulesOn, schedulesWithOccurrence } from './queries.ts';
import type { ScheduleState } from './schedule.ts';

/**
 * A schedule's occurrences, written on either side: the API's slonik transactions and the worker's
 * pg-boss ones. Each function takes the one transaction twice: as a `Connection` for our statements and
 * as pg-boss's `Db` for its jobs (bossDb(tx) on the API's side, the transaction itself on the worker's).
 * Set-based: a worker's batch writes the next occurrences of all its schedules in a few statements.
 */
export type Transaction = { readonly sql: Connection; readonly jobs: BossDb };
export type OccurrenceDeps = { readonly boss: Boss; readonly parkBeyondSeconds: number };
type Planned = { schedule: ScheduleState; at: number; skipped: number };

/**
 * Writes each schedule's occurrence due at `at` (a cron time) with its job, and records it as the
 * schedule's next. Two pending occurrences of one schedule cannot exist: the database refuses the second.
 */
export async function writeOccurrences(deps: OccurrenceDeps, tx: Transaction, planned: readonly Planned[]) {
  if (planned.length === 0) return [];
  const tasks = await insertOccurrences(
    tx.sql,
    planned.map(({ schedule, at }) => ({
      userId: schedule.user_id,
      title: schedule.title,
      description: schedule.description,
      jobId: randomUUID(),
      dueAt: at,
      scheduleId: schedule.id,
    })),
  );
  await sendCompletionJobs(
    deps,
    tx.jobs,
    tasks.map((task) => ({ taskId: task.id, jobId: task.job_id ?? '', dueAt: new Date(task.due_at) })),
  );
  await moveSchedulesOn(
    tx.sql,
    planned.map(({ schedule, at, skipped }) => ({ id: schedule.id, firesAt: at, skipped })),
  );
  return tasks;
}

/**
 * The first cron time after both the last one (`fires_at`: never twice for one cron time, whatever was done
 * to its occurrence) and now (no burst after an outage), and how many cron times lie between the last and
 * now (skipped). With `again`, the last one itself when it is still ahead (its occurrence was lost, not
 * completed or deleted). Null when the cron never fires again.
 */
export function nextAfter(
  schedule: ScheduleState,
  nowMs: number,
  again = false,
): { at: number | null; skipped: number } {
  const cron = parseCron(schedule.cron);
  const last = schedule.fires_at === null ? nowMs : Date.parse(schedule.fires_at);
  if (again && last > nowMs) return { at: last, skipped: 0 };
  const skipped = last < nowMs ? countFiresBetween(cron, schedule.time_zone, last, nowMs) : 0;
  return { at: nextFireAfter(cron, schedule.time_zone, Math.max(last, nowMs)), skipped };
}

/**
 * After these schedules' pending occurrences were completed or deleted in this transaction (by the worker,
 * by hand, by DELETE /tasks/:id), writes the next ones; after one was lost (`lost`: an operator's delete),
 * the same cron time again while it is ahead. The schedules' rows are locked first, in id order; a paused
 * or deleted schedule, or one that already has its pending occurrence, gets nothing.
 */
export async function advanceSchedules(
  deps: OccurrenceDeps,
  tx: Transaction,
  scheduleIds: readonly number[],
  nowMs = Date.now(),
  lost = false,
): Promise<Task[]> {
  if (scheduleIds.length === 0) return [];
  const locked = await lockSchedules(tx.sql, scheduleIds);
  const pending = new Set(
    (
      await schedulesWithOccurrence(
        tx.sql,
        locked.map((schedule) => schedule.id),
      )
    ).map((row) => row.schedule_id),
  );
  return advanceLocked(
    deps,
    tx,
    locked.filter((schedule) => !pending.has(schedule.id)),
    nowMs,
    lost,
  );
}

/**
 * `advanceSchedules` for schedules this transaction has locked already and knows to have no pending
 * occurrence (the worker's batch: it locked them before completing their occurrences).
 */
export async function advanceLocked(
  deps: OccurrenceDeps,
  tx: Transaction,
  schedules: readonly ScheduleState[],
  nowMs = Date.now(),
  lost = false,
): Promise<Task[]> {
  const planned = schedules
    .filter((schedule) => !schedule.paused)
    .map((schedule) => ({ schedule, ...nextAfter(schedule, nowMs, lost) }));
  // A cron that never fires again leaves its schedule paused.
  const ended = planned.filter((plan) => plan.at === null);
  if (ended.length > 0) {
    await moveSchedulesOn(
      tx.sql,
      ended.map(({ schedule, skipped }) => ({ id: schedule.id, firesAt: null, skipped })),
    );
  }
  return [
    ...(await writeOccurrences(
      deps,
      tx,
      planned.filter((plan): plan is Planned => plan.at !== null),
    )),
  ];
}

/** Deletes the schedule's pending occurrence and its job (a pause, a new cron or zone, a deletion). */
export async function dropPendingOccurrence(deps: OccurrenceDeps, tx: Transaction, scheduleId: number) {
  const pending = await lockPendingOccurrence(tx.sql, scheduleId);
  if (!pending) return;
  if (pending.job_id) await deps.boss.deleteJob(COMPLETE_TASK, pending.job_id, { db: tx.jobs });
  await tx.sql.any(deleteTaskRowToken(pending.id));
}
