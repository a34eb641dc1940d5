import type { Db } from 'pg-boss';
import { onBossDb } from '../../db/connection.ts';
import { parkJobs } from '../../db/parking.ts';
import { type Boss, COMPLETE_TASK } from '../../db/queues.ts';

export type CompletionJob = { readonly taskId: number; readonly jobId: string; readonly dueAt: Date };

/**
 * The jobs (each `jobId` already on its task's row) that complete these tasks at their `dueAt`, written in one
 * statement on `db`: the caller's transaction, a slonik one through `bossDb` (the API) or pg-boss's own (the
 * worker's), so the tasks and their jobs commit together. The jobs due beyond `parkBeyondSeconds` are
 * parked (src/db/parking.ts). The one way a completion job is sent.
 * @throws Error when pg-boss did not create every job under its id.
 */
export async function sendCompletionJobs(
  { boss, parkBeyondSeconds }: { boss: Boss; parkBeyondSeconds: number },
  db: Db,
  jobs: readonly CompletionJob[],
): Promise<void> {
  if (jobs.length === 0) return;
  const sent = await boss.insert(
    COMPLETE_TASK,
    jobs.map((job) => ({ id: job.jobId, data: { taskId: job.taskId }, startAfter: job.dueAt })),
    { db, returnId: true },
  );
  if (sent?.length !== jobs.length) {
    throw new Error(
      `pg-boss created ${sent?.length ?? 0} of ${jobs.length} completion jobs (tasks ${jobs.map((job) => job.taskId)})`,
    );
  }
  const horizon = Date.now() + parkBeyondSeconds * 1000;
  const far = jobs.filter((job) => job.dueAt.getTime() > horizon).map((job) => job.jobId);
  if (far.length > 0) await parkJobs(onBossDb(db), far, parkBeyondSeconds);
}

/** One task's job: sendCompletionJobs for one. */
export const sendCompletionJob = (
  deps: { boss: Boss; parkBeyondSeconds: number },
  db: Db,
  job: CompletionJob,
): Promise<void> => sendCompletionJobs(deps, db, [job]);
