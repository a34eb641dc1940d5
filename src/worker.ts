import { z } from 'zod';
import { completeTasksOfJobsSql } from './domain/tasks/queries.ts';
import type { Logger } from './log.ts';
import { type Boss, COMPLETE_TASK } from './queue.ts';

export type WorkerSettings = { readonly pollIntervalSeconds: number; readonly batchSize: number };

const completedRow = z.object({ id: z.coerce.number() });

/**
 * Works the task-completion queue. Each batch runs in ONE transaction with the jobs' completion
 * (pg-boss `transactional: true`): the tasks are completed exactly when their jobs are, never twice.
 * A job whose task is gone or already completed updates nothing and simply completes.
 * A failure rolls the whole batch back; pg-boss retries its jobs with backoff.
 */
export async function startWorker(boss: Boss, settings: WorkerSettings, log: Logger): Promise<string> {
  return boss.work(
    COMPLETE_TASK,
    {
      transactional: true,
      batchSize: settings.batchSize,
      pollingIntervalSeconds: settings.pollIntervalSeconds,
      // A full batch means more are due: fetch again at once instead of waiting out the poll.
      burstWhenBatchFull: true,
    },
    async (jobs, tx) => {
      try {
        const { rows } = await tx.executeSql(completeTasksOfJobsSql, [jobs.map((job) => job.id)]);
        const taskIds = rows.map((row) => completedRow.parse(row).id);
        log.info({ jobs: jobs.length, completed: taskIds }, 'completed tasks');
      } catch (error) {
        log.error({ err: error, jobs: jobs.map((job) => job.id) }, 'task completion failed; pg-boss will retry');
        throw error;
      }
    },
  );
}
