import { randomUUID } from 'node:crypto';
import { inTransaction } from '../../db/bossTransaction.ts';
import { onBossDb } from '../../db/connection.ts';
import type { Boss } from '../../db/queues.ts';
import { advanceLocked, advanceSchedules, type OccurrenceDeps } from '../schedules/occurrences.ts';
import { findSchedulesWithoutOccurrence, lockSchedulesOfJobs } from '../schedules/queries.ts';
import { sendCompletionJob } from './completionJob.ts';
import { completeTasksOfJobs, findOrphanedTasks, replaceLostJob } from './queries.ts';

export type Completed = { id: number; latenessSeconds: number };

/**
 * Completes the pending tasks of these jobs, and writes the next occurrence of each schedule among them,
 * in ONE transaction on pg-boss's pool; resolves with the tasks it completed (id, and how late after
 * `due_at`) once it has committed. The schedules are locked first, in id order (the lock order of every
 * change to a schedule and its occurrences). pg-boss completes the jobs when the handler returns. A worker
 * that dies in between leaves the jobs active; they are retried after the heartbeat, and the retry completes
 * nothing twice: a job whose task is gone or already completed changes nothing.
 */
export function completeTasks(deps: OccurrenceDeps, jobIds: string[]): Promise<Completed[]> {
  return inTransaction(deps.boss, async (db) => {
    const tx = { sql: onBossDb(db), jobs: db };
    const schedules = await lockSchedulesOfJobs(tx.sql, jobIds);
    const rows = await completeTasksOfJobs(tx.sql, jobIds);
    // The schedules whose pending occurrence this completed (so none is pending now) get their next.
    const advancing = new Set(rows.map((row) => row.schedule_id));
    await advanceLocked(
      deps,
      tx,
      schedules.filter((schedule) => advancing.has(schedule.id)),
    );
    return rows.map(({ id, lateness_seconds }) => ({ id, latenessSeconds: lateness_seconds }));
  });
}

export type Rescheduled = { taskId: number; lostJobId: string | null; jobId: string; startAfter: Date };

/**
 * Self-healing: a pending task whose job is missing (an operator purged pg-boss's tables) or can no
 * longer run (failed after every retry) gets a new job, due at its `due_at` (or now, when that has
 * passed). Each task changes in a transaction of its own, guarded on the job it had, so workers that
 * reconcile at the same time never give a task two jobs.
 */
export async function rescheduleOrphanedTasks(
  boss: Boss,
  parkBeyondSeconds: number,
  limit = 500,
): Promise<Rescheduled[]> {
  const orphans = await findOrphanedTasks(onBossDb(boss.getDb()), limit);
  const done: Rescheduled[] = [];
  for (const orphan of orphans) {
    const jobId = randomUUID();
    const startAfter = new Date(Math.max(Date.parse(orphan.due_at), Date.now()));
    const rescheduled = await inTransaction(boss, async (db) => {
      if (!(await replaceLostJob(onBossDb(db), orphan.id, orphan.job_id, jobId))) return false; // changed meanwhile
      await sendCompletionJob({ boss, parkBeyondSeconds }, db, { taskId: orphan.id, jobId, dueAt: startAfter });
      return true;
    });
    if (rescheduled) done.push({ taskId: orphan.id, lostJobId: orphan.job_id, jobId, startAfter });
  }
  return done;
}

/**
 * Self-healing of schedules: an active schedule that lost its pending occurrence (an operator's delete in
 * SQL) gets its next one, each in a transaction of its own. Resolves with the occurrences written.
 */
export async function repairSchedules(
  deps: OccurrenceDeps,
  limit = 100,
): Promise<{ scheduleId: number; taskId: number }[]> {
  const lost = await findSchedulesWithoutOccurrence(onBossDb(deps.boss.getDb()), limit);
  const repaired: { scheduleId: number; taskId: number }[] = [];
  for (const { id } of lost) {
    const [task] = await inTransaction(deps.boss, (db) =>
      advanceSchedules(deps, { sql: onBossDb(db), jobs: db }, [id], Date.now(), true),
    );
    if (task) repaired.push({ scheduleId: id, taskId: task.id });
  }
  return repaired;
}
