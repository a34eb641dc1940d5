import type { Db } from 'pg-boss';
import { onBossDb } from '../../db/connection.ts';
import { parkIfFar } from '../../db/parking.ts';
import { type Boss, COMPLETE_TASK } from '../../db/queues.ts';

/**
 * The job (`jobId`, already on the task's row) that completes task `taskId` at `dueAt`, written on `db`:
 * the caller's transaction, a slonik one through `bossDb` (the API) or pg-boss's own (the worker's
 * reconciliation), so the task and its job commit together. Parked when due beyond `parkBeyondSeconds`
 * (src/db/parking.ts).
 * @throws Error when pg-boss did not create the job under that id.
 */
export async function sendCompletionJob(
  { boss, parkBeyondSeconds }: { boss: Boss; parkBeyondSeconds: number },
  db: Db,
  job: { taskId: number; jobId: string; dueAt: Date },
): Promise<void> {
  const sent = await boss.send(COMPLETE_TASK, { taskId: job.taskId }, { id: job.jobId, startAfter: job.dueAt, db });
  if (sent !== job.jobId) throw new Error(`pg-boss did not create job ${job.jobId} for task ${job.taskId}`);
  await parkIfFar(onBossDb(db), job.jobId, job.dueAt, parkBeyondSeconds);
}
