import { randomUUID } from 'node:crypto';
import { inTransaction } from '../../db/bossTransaction.ts';
import { onBossDb } from '../../db/connection.ts';
import type { Boss } from '../../db/queues.ts';
import { sendCompletionJob } from './completionJob.ts';
import { completeTasksOfJobs, findOrphanedTasks, replaceLostJob } from './queries.ts';

export type Completed = { id: number; latenessSeconds: number };

/**
 * Completes the pending tasks of these jobs in ONE statement (so one transaction of its own) on pg-boss's
 * pool, and resolves with the tasks it completed (id, and how late after `due_at`) once it has committed.
 * pg-boss completes the jobs when the handler returns. A worker that dies in between leaves the jobs
 * active; they are retried after the heartbeat, and the retry completes nothing twice: a job whose task is
 * gone or already completed changes nothing.
 */
export async function completeTasks(boss: Boss, jobIds: string[]): Promise<Completed[]> {
  const rows = await completeTasksOfJobs(onBossDb(boss.getDb()), jobIds);
  return rows.map(({ id, lateness_seconds }) => ({ id, latenessSeconds: lateness_seconds }));
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
