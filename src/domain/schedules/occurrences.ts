import { randomUUID } from 'node:crypto';
import type { Db as BossDb } from 'pg-boss';
import type { Connection } from '../../db/connection.ts';
import { type Boss, COMPLETE_TASK } from '../../db/queues.ts';
import { sendCompletionJob } from '../tasks/completionJob.ts';
import { deleteTaskRowToken, insertTask } from '../tasks/queries.ts';
import type { Task } from '../tasks/task.ts';
import { countFiresBetween, nextFireAfter, parseCron } from './cron.ts';
import { lockPendingOccurrence, lockSchedule, moveScheduleOn } from './queries.ts';
import type { ScheduleState } from './schedule.ts';

/**
 * A schedule's occurrences, written on either side: the API's slonik transactions and the worker's
 * pg-boss ones. Each function takes the one transaction twice: as a `Connection` for our statements and
 * as pg-boss's `Db` for its job (bossDb(tx) on the API's side, the transaction itself on the worker's).
 */
export type Transaction = { readonly sql: Connection; readonly jobs: BossDb };
export type OccurrenceDeps = { readonly boss: Boss; readonly parkBeyondSeconds: number };

/**
 * Writes the occurrence due at `dueAt` (a cron time) with its job, and records it as the schedule's next.
 * Two pending occurrences of one schedule cannot exist: the database refuses the second.
 */
export async function writeOccurrence(
  deps: OccurrenceDeps,
  tx: Transaction,
  schedule: ScheduleState,
  dueAt: number,
  skipped = 0,
): Promise<Task> {
  const jobId = randomUUID();
  const task = await insertTask(tx.sql, {
    userId: schedule.user_id,
    title: schedule.title,
    description: schedule.description,
    jobId,
    due: { at: new Date(dueAt) },
    scheduleId: schedule.id,
  });
  await sendCompletionJob(deps, tx.jobs, { taskId: task.id, jobId, dueAt: new Date(dueAt) });
  await moveScheduleOn(tx.sql, schedule.id, dueAt, skipped);
  return task;
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
 * After the schedule's pending occurrence was completed or deleted in this transaction (by the worker, by
 * hand, by DELETE /tasks/:id), writes the next one; after it was lost (`lost`: an operator's delete), the
 * same cron time again while it is ahead. The schedule's row is locked first; a paused or deleted
 * schedule, or one that already has its pending occurrence, gets nothing.
 */
export async function advanceSchedule(
  deps: OccurrenceDeps,
  tx: Transaction,
  scheduleId: number,
  nowMs = Date.now(),
  lost = false,
): Promise<Task | null> {
  const schedule = await lockSchedule(tx.sql, scheduleId);
  if (!schedule || schedule.paused) return null;
  if (await lockPendingOccurrence(tx.sql, scheduleId)) return null;
  const { at, skipped } = nextAfter(schedule, nowMs, lost);
  if (at === null) {
    await moveScheduleOn(tx.sql, schedule.id, null, skipped); // never fires again: paused
    return null;
  }
  return writeOccurrence(deps, tx, schedule, at, skipped);
}

/** Deletes the schedule's pending occurrence and its job (a pause, a new cron or zone, a deletion). */
export async function dropPendingOccurrence(deps: OccurrenceDeps, tx: Transaction, scheduleId: number) {
  const pending = await lockPendingOccurrence(tx.sql, scheduleId);
  if (!pending) return;
  if (pending.job_id) await deps.boss.deleteJob(COMPLETE_TASK, pending.job_id, { db: tx.jobs });
  await tx.sql.any(deleteTaskRowToken(pending.id));
}
