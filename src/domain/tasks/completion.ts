import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { inTransaction } from '../../db/bossTransaction.ts';
import { type Boss, COMPLETE_TASK } from '../../db/queues.ts';
import { sendCompletionJob } from './completionJob.ts';
import { completeTasksOfJobsSql, orphanedTasksSql, rescheduleTaskSql } from './queries.ts';

const completedRow = z.object({ id: z.coerce.number(), lateness_seconds: z.number() });
export type Completed = { id: number; latenessSeconds: number };
const orphanRow = z.object({ id: z.coerce.number(), job_id: z.string().nullable(), due_at: z.coerce.date() });

/**
 * Completes the pending tasks of these jobs in ONE statement (so one transaction of its own) on pg-boss's
 * pool, and resolves with the tasks it completed (id, and how late after `due_at`) once it has committed.
 * pg-boss completes the jobs when the handler returns. A worker that dies in between leaves the jobs
 * active; they are retried after the heartbeat, and the retry completes nothing twice: a job whose task is
 * gone or already completed changes nothing.
 */
export async function completeTasksOfJobs(boss: Boss, jobIds: string[]): Promise<Completed[]> {
  const { rows } = await boss.getDb().executeSql(completeTasksOfJobsSql, [jobIds]);
  return rows.map((row: unknown) => {
    const { id, lateness_seconds } = completedRow.parse(row);
    return { id, latenessSeconds: lateness_seconds };
  });
}

export type Rescheduled = { taskId: number; lostJobId: string | null; jobId: string; startAfter: Date };

/**
 * Self-healing: a pending task whose job is missing (an operator purged pg-boss's tables) or can no
 * longer run (failed after every retry) gets a new job, due at its `due_at` (or now, when that has
 * passed). Each task changes in a transaction of its own, guarded on the job it had, so workers that
 * reconcile at the same time never give a task two jobs.
 */
export async function rescheduleOrphanedTasks(boss: Boss, limit = 500): Promise<Rescheduled[]> {
  const { rows } = await boss.getDb().executeSql(orphanedTasksSql, [COMPLETE_TASK, limit]);
  const done: Rescheduled[] = [];
  for (const orphan of rows.map((row: unknown) => orphanRow.parse(row))) {
    const jobId = randomUUID();
    const startAfter = new Date(Math.max(orphan.due_at.getTime(), Date.now()));
    const rescheduled = await inTransaction(boss, async (db) => {
      const { rows: changed } = await db.executeSql(rescheduleTaskSql, [orphan.id, orphan.job_id, jobId]);
      if (changed.length === 0) return false; // completed, deleted or rescheduled meanwhile
      await sendCompletionJob(boss, db, { taskId: orphan.id, jobId, dueAt: startAfter });
      return true;
    });
    if (rescheduled) done.push({ taskId: orphan.id, lostJobId: orphan.job_id, jobId, startAfter });
  }
  return done;
}
