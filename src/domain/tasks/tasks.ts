import { createHash, randomUUID } from 'node:crypto';
import { type DatabasePool, ForeignKeyIntegrityConstraintViolationError } from 'slonik';
import { bossDb } from '../../db/bossDb.ts';
import { AppError, conflict, forbidden, notFound, unauthorized } from '../../errors.ts';
import { type Boss, COMPLETE_TASK } from '../../jobs/queue.ts';
import type { Actor } from '../users/user.ts';
import { claimIdempotencyKey, findIdempotentResponse } from './idempotency.ts';
import { deleteTaskRow, findTask, insertTask, listTasks, markTaskCompleted, updateTaskText } from './queries.ts';
import type { Task, TaskStatus } from './task.ts';

export type TaskDeps = { readonly db: DatabasePool; readonly boss: Boss; readonly delaySeconds: number };

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
  input: { title: string; description: string },
  idempotencyKey?: string,
): Promise<{ task: Task; replayed: boolean }> {
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([input.title, input.description]))
    .digest('hex');
  try {
    const task = await deps.db.transaction(async (tx) => {
      const jobId = randomUUID();
      const task = await insertTask(tx, { userId: actor.id, ...input, jobId, delaySeconds: deps.delaySeconds });
      const sent = await deps.boss.send(
        COMPLETE_TASK,
        { taskId: task.id },
        { id: jobId, startAfter: new Date(task.due_at), db: bossDb(tx) },
      );
      if (sent !== jobId) throw new Error(`pg-boss did not create job ${jobId} for task ${task.id}`);
      if (idempotencyKey !== undefined) {
        const claimed = await claimIdempotencyKey(tx, { userId: actor.id, key: idempotencyKey, fingerprint, task });
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
 * One page of tasks, newest first, and the cursor of the next page (null on the last one). An admin
 * lists everyone's (or one user's); anyone else their own.
 * @throws AppError 403 when a non-admin asks for another user's tasks.
 */
export async function listTaskPage(
  deps: TaskDeps,
  actor: Actor,
  query: { limit: number; userId?: number | undefined; status?: TaskStatus | undefined; cursor?: number | undefined },
): Promise<{ tasks: Task[]; nextCursor: number | null }> {
  assertMaySeeTasksOf(actor, query.userId);
  const rows = await listTasks(deps.db, actor, {
    limit: query.limit + 1, // one more than asked tells whether there is a next page
    ...(query.userId !== undefined && { userId: query.userId }),
    ...(query.status !== undefined && { status: query.status }),
    ...(query.cursor !== undefined && { before: query.cursor }),
  });
  const tasks = rows.slice(0, query.limit);
  const last = tasks.at(-1);
  return { tasks, nextCursor: rows.length > query.limit && last ? last.id : null };
}

/** @throws AppError 404 when the task does not exist or is not the actor's to see. */
export async function getTask(deps: TaskDeps, actor: Actor, id: number): Promise<Task> {
  const task = await findTask(deps.db, actor, id);
  if (!task) throw notFound('task');
  return task;
}

/**
 * Changes title and description, and completes a pending task by hand: its job is cancelled in the
 * same transaction. The job is touched before the task, in the worker's order, so the two never deadlock.
 * @throws AppError 404 when the task does not exist or is not the actor's.
 */
export function updateTask(
  deps: TaskDeps,
  actor: Actor,
  id: number,
  change: { title?: string | undefined; description?: string | undefined; status?: 'completed' | undefined },
): Promise<Task> {
  return deps.db.transaction(async (tx) => {
    let task = await findTask(tx, actor, id);
    if (!task) throw notFound('task');
    const completing = change.status === 'completed' && task.status === 'pending';
    if (completing && task.job_id) await deps.boss.cancel(COMPLETE_TASK, task.job_id, { db: bossDb(tx) });
    if (change.title !== undefined || change.description !== undefined) {
      task = await updateTaskText(tx, id, change);
    }
    if (completing) {
      // Null when the worker completed it meanwhile (then it is completed, as asked), or when a DELETE
      // won the race for the row (then it is gone: 404, never the stale pending task).
      const current = (await markTaskCompleted(tx, id)) ?? (await findTask(tx, actor, id));
      if (!current) throw notFound('task');
      task = current;
    }
    return task;
  });
}

/**
 * Deletes the task and its job in one transaction; a deleted task is never completed afterwards.
 * @throws AppError 404 when the task does not exist or is not the actor's.
 */
export function deleteTask(deps: TaskDeps, actor: Actor, id: number): Promise<void> {
  return deps.db.transaction(async (tx) => {
    const task = await findTask(tx, actor, id);
    if (!task) throw notFound('task');
    if (task.job_id) await deps.boss.deleteJob(COMPLETE_TASK, task.job_id, { db: bossDb(tx) });
    const deleted = await deleteTaskRow(tx, id);
    if (deleted.rowCount === 0) throw notFound('task');
  });
}
