import { createHash, randomUUID } from 'node:crypto';
import {
  type DatabasePool,
  type DatabaseTransactionConnection,
  ForeignKeyIntegrityConstraintViolationError,
} from 'slonik';
import { bossDb } from '../../db/bossDb.ts';
import { type Boss, COMPLETE_TASK } from '../../db/queues.ts';
import { AppError, conflict, forbidden, notFound, unauthorized } from '../../errors.ts';
import { keysetPage } from '../keysetPage.ts';
import { advanceSchedules } from '../schedules/occurrences.ts';
import { lockSchedule } from '../schedules/queries.ts';
import type { Actor } from '../users/user.ts';
import { sendCompletionJob } from './completionJob.ts';
import { claimIdempotencyKey, findIdempotentResponse } from './idempotency.ts';
import { formatListCursor, type ListCursor, type TaskSort } from './listCursor.ts';
import {
  deleteTaskRow,
  findScheduleIdOfTask,
  findTask,
  insertTask,
  listTasks,
  markTaskCompleted,
  rescheduleTask,
  updateTaskText,
} from './queries.ts';
import type { Due, Task, TaskStatus } from './task.ts';

export type TaskDeps = {
  readonly db: DatabasePool;
  readonly boss: Boss;
  readonly delaySeconds: number;
  /** Completion jobs due further ahead wait parked (Timing.parkBeyondSeconds). */
  readonly parkBeyondSeconds: number;
};

/** Thrown inside the creating transaction to roll it back when the idempotency key is already taken. */
class KeyTaken extends Error {}

/**
 * Creates a pending task and its completion job in ONE transaction: both rows exist, or neither does.
 * The job id is chosen here so the task row can carry it from the start.
 *
 * With an idempotency key, the response is recorded under (user, key) in the same transaction, last, so
 * a concurrent request with the same key waits for this one's outcome. A retry whose key is taken rolls
 * back what it wrote and gets the recorded task (`replayed: true`).
 * @throws AppError 422 when the key was used with another body; 401 when the user no longer exists.
 */
export async function createTask(
  deps: TaskDeps,
  actor: Actor,
  input: { title: string; description: string; due?: Due | undefined },
  idempotencyKey?: string,
): Promise<{ task: Task; replayed: boolean }> {
  const { title, description, due = { delaySeconds: deps.delaySeconds } } = input;
  // The due time as the request said it (a retry of "in 60 s" is the same request a minute later); the
  // default adds nothing, so keys recorded before due times existed still match.
  const asked = input.due && ('at' in input.due ? input.due.at.toISOString() : input.due.delaySeconds);
  const fingerprint =
    idempotencyKey === undefined
      ? ''
      : createHash('sha256')
          .update(JSON.stringify(asked === undefined ? [title, description] : [title, description, asked]))
          .digest('hex');
  try {
    const task = await deps.db.transaction(async (tx) => {
      const jobId = randomUUID();
      const task = await insertTask(tx, { userId: actor.id, title, description, jobId, due });
      await sendCompletionJob(deps, bossDb(tx), { taskId: task.id, jobId, dueAt: new Date(task.due_at) });
      if (idempotencyKey !== undefined) {
        const claimed = await claimIdempotencyKey(tx, {
          userId: actor.id,
          key: idempotencyKey,
          fingerprint,
          response: task,
        });
        if (!claimed) throw new KeyTaken();
      }
      return task;
    });
    return { task, replayed: false };
  } catch (error) {
    if (error instanceof ForeignKeyIntegrityConstraintViolationError) {
      throw unauthorized('the account of this token no longer exists');
    }
    if (!(error instanceof KeyTaken) || idempotencyKey === undefined) throw error;
  }
  const first = await findIdempotentResponse(deps.db, actor.id, idempotencyKey);
  if (!first) throw conflict('this Idempotency-Key expired while in use: send the request again');
  if (first.fingerprint !== fingerprint) {
    throw new AppError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with another body');
  }
  return { task: first.response, replayed: true };
}

/**
 * An admin may see (list, watch) any user's tasks; anyone else only their own.
 * @throws AppError 403 for another user's tasks asked by a non-admin.
 */
export function assertMaySeeTasksOf(actor: Actor, userId: number | undefined): void {
  if (userId !== undefined && actor.role !== 'admin' && userId !== actor.id) {
    throw forbidden("only an admin may see other users' tasks");
  }
}

/**
 * One page of tasks, newest first or soonest due first, and the cursor of the next page (null on the
 * last one). An admin lists everyone's (or one user's); anyone else their own.
 * @throws AppError 403 when a non-admin asks for another user's tasks.
 */
export async function listTaskPage(
  deps: TaskDeps,
  actor: Actor,
  query: {
    limit: number;
    sort: TaskSort;
    userId?: number | undefined;
    status?: TaskStatus | undefined;
    scheduleId?: number | undefined;
    cursor?: ListCursor | undefined;
  },
): Promise<{ tasks: Task[]; nextCursor: string | null }> {
  assertMaySeeTasksOf(actor, query.userId);
  const rows = await listTasks(deps.db, actor, {
    limit: query.limit + 1, // one more than asked tells whether there is a next page
    sort: query.sort,
    ...(query.userId !== undefined && { userId: query.userId }),
    ...(query.status !== undefined && { status: query.status }),
    ...(query.scheduleId !== undefined && { scheduleId: query.scheduleId }),
    ...(query.cursor !== undefined && { after: query.cursor }),
  });
  const { page, nextCursor } = keysetPage(rows, query.limit, (last) => formatListCursor(query.sort, last));
  return { tasks: page, nextCursor };
}

/** @throws AppError 404 when the task does not exist or is not the actor's to see. */
export async function getTask(deps: TaskDeps, actor: Actor, id: number): Promise<Task> {
  const task = await findTask(deps.db, actor, id);
  if (!task) throw notFound('task');
  return task;
}

/**
 * Changes title and description, completes a pending task by hand (its job is cancelled), or reschedules
 * it (its job is deleted and a new one, due at the new time, is sent): all in one transaction.
 *
 * The task's row is locked first, so changes to one task happen one at a time, whoever makes them: a
 * reschedule racing a DELETE, another PATCH or the worker's completion sees the outcome of the one before.
 * The worker completes a task only through its current `job_id`, so once a reschedule commits, the old job
 * can no longer complete it. (No deadlock: the worker's statements each lock either jobs or tasks.)
 * @throws AppError 404 when the task does not exist or is not the actor's; 409 when rescheduling a
 * completed task.
 */
export function updateTask(
  deps: TaskDeps,
  actor: Actor,
  id: number,
  change: {
    title?: string | undefined;
    description?: string | undefined;
    status?: 'completed' | undefined;
    due?: Due | undefined;
  },
): Promise<Task> {
  return deps.db.transaction(async (tx) => {
    let task = await lockTask(tx, actor, id);
    if (!task) throw notFound('task');
    if (change.due) {
      if (task.status !== 'pending') throw conflict('the task is completed: it cannot be rescheduled');
      if (task.job_id) await deps.boss.deleteJob(COMPLETE_TASK, task.job_id, { db: bossDb(tx) });
      const jobId = randomUUID();
      task = await rescheduleTask(tx, id, { due: change.due, jobId });
      await sendCompletionJob(deps, bossDb(tx), { taskId: task.id, jobId, dueAt: new Date(task.due_at) });
    }
    if (change.status === 'completed' && task.status === 'pending') {
      if (task.job_id) await deps.boss.cancel(COMPLETE_TASK, task.job_id, { db: bossDb(tx) });
      task = (await markTaskCompleted(tx, id)) ?? task;
      // An occurrence completed by hand: its schedule's next one, in this transaction.
      if (task.schedule_id !== null) await advanceSchedules(deps, { sql: tx, jobs: bossDb(tx) }, [task.schedule_id]);
    }
    if (change.title !== undefined || change.description !== undefined) {
      task = await updateTaskText(tx, id, change);
    }
    return task;
  });
}

/**
 * Locks the task's row until the transaction ends; an occurrence's schedule first (the lock order of every
 * change to a schedule and its occurrences, the worker's included: no deadlock between them).
 */
async function lockTask(tx: DatabaseTransactionConnection, actor: Actor, id: number): Promise<Task | null> {
  const scheduleId = await findScheduleIdOfTask(tx, actor, id);
  if (scheduleId !== null) await lockSchedule(tx, scheduleId);
  return findTask(tx, actor, id, { forUpdate: true });
}

/**
 * Deletes the task and its job in one transaction; a deleted task is never completed afterwards.
 * @throws AppError 404 when the task does not exist or is not the actor's.
 */
export function deleteTask(deps: TaskDeps, actor: Actor, id: number): Promise<void> {
  return deps.db.transaction(async (tx) => {
    const task = await lockTask(tx, actor, id);
    if (!task) throw notFound('task');
    if (task.job_id) await deps.boss.deleteJob(COMPLETE_TASK, task.job_id, { db: bossDb(tx) });
    await deleteTaskRow(tx, id);
    // A pending occurrence deleted: its schedule's next one, in this transaction.
    if (task.schedule_id !== null && task.status === 'pending') {
      await advanceSchedules(deps, { sql: tx, jobs: bossDb(tx) }, [task.schedule_id]);
    }
  });
}
