import { type CommonQueryMethods, type FragmentSqlToken, sql } from 'slonik';
import { z } from 'zod';
import { idColumn, timestampColumn } from '../../db/columns.ts';
import type { Connection } from '../../db/connection.ts';
import { bossTable, COMPLETE_TASK } from '../../db/queues.ts';
import type { Actor } from '../users/user.ts';
import type { ListCursor, TaskSort } from './listCursor.ts';
import { type Due, type TaskStatus, taskRow } from './task.ts';

const columns = sql.fragment`id, user_id, title, description, status, due_at, completed_at, created_at, updated_at, job_id, schedule_id`;

/** Admins reach every task; anyone else only their own. */
const visibleTo = (actor: Actor): FragmentSqlToken =>
  actor.role === 'admin' ? sql.fragment`true` : sql.fragment`user_id = ${actor.id}`;

/**
 * The due time in SQL; a delay counts from the database's clock. A trigger cuts every `due_at` to
 * milliseconds (sql/*_due_times.sql), so the job's `start_after` (a JS Date) equals it exactly.
 */
const dueAtSql = (due: Due): FragmentSqlToken =>
  'at' in due
    ? sql.fragment`${due.at.toISOString()}::timestamptz`
    : sql.fragment`now() + make_interval(secs => ${due.delaySeconds})`;

export function insertTask(
  db: Connection,
  task: { userId: number; title: string; description: string; jobId: string; due: Due; scheduleId?: number },
) {
  return db.one(sql.type(taskRow)`
    insert into tasks (user_id, title, description, job_id, due_at, schedule_id)
    values (${task.userId}, ${task.title}, ${task.description}, ${task.jobId}, ${dueAtSql(task.due)},
            ${task.scheduleId ?? null})
    returning ${columns}`);
}

/** Occurrences of schedules, each due at its cron time: one statement for any number of them. */
export function insertOccurrences(
  db: Connection,
  rows: readonly {
    userId: number;
    title: string;
    description: string;
    jobId: string;
    dueAt: number;
    scheduleId: number;
  }[],
) {
  const column = <T>(pick: (row: (typeof rows)[number]) => T) => rows.map(pick);
  return db.any(sql.type(taskRow)`
    insert into tasks (user_id, title, description, job_id, due_at, schedule_id)
    select * from unnest(
      ${sql.array(
        column((row) => row.userId),
        'int8',
      )}, ${sql.array(
        column((row) => row.title),
        'text',
      )},
      ${sql.array(
        column((row) => row.description),
        'text',
      )}, ${sql.array(
        column((row) => row.jobId),
        'uuid',
      )},
      ${sql.array(
        column((row) => new Date(row.dueAt).toISOString()),
        'timestamptz',
      )},
      ${sql.array(
        column((row) => row.scheduleId),
        'int8',
      )})
    returning ${columns}`);
}

/**
 * With `forUpdate`, the row stays locked until the transaction ends: every change to a task (PATCH,
 * DELETE, the worker's completion) then happens one at a time, each seeing the one before.
 */
export function findTask(db: CommonQueryMethods, actor: Actor, id: number, options: { forUpdate?: boolean } = {}) {
  return db.maybeOne(sql.type(taskRow)`
    select ${columns} from tasks where id = ${id} and ${visibleTo(actor)}
    ${options.forUpdate ? sql.fragment`for update` : sql.fragment``}`);
}

const scheduleIdRow = z.object({ schedule_id: idColumn.nullable() });

/** The schedule a task is an occurrence of (null for a one-off, or a task not there or not the actor's). */
export async function findScheduleIdOfTask(db: Connection, actor: Actor, id: number): Promise<number | null> {
  return (
    (await db.maybeOne(sql.type(scheduleIdRow)`select schedule_id from tasks where id = ${id} and ${visibleTo(actor)}`))
      ?.schedule_id ?? null
  );
}

export type ListFilter = {
  userId?: number;
  scheduleId?: number;
  status?: TaskStatus;
  sort: TaskSort;
  after?: ListCursor;
  limit: number;
};

/**
 * Newest first (by id), or soonest due first (by due_at, then id); keyset-paginated, so rows added or
 * deleted meanwhile never shift a page. Each order has an index for one user and one for everyone.
 */
export function listTasks(db: CommonQueryMethods, actor: Actor, filter: ListFilter) {
  const conditions = [visibleTo(actor)];
  if (filter.userId !== undefined) conditions.push(sql.fragment`user_id = ${filter.userId}`);
  if (filter.status !== undefined) conditions.push(sql.fragment`status = ${filter.status}`);
  if (filter.scheduleId !== undefined) conditions.push(sql.fragment`schedule_id = ${filter.scheduleId}`);
  const due = filter.sort === 'due';
  const { after } = filter;
  if (after) {
    conditions.push(
      due
        ? sql.fragment`(due_at, id) > (${after.dueAt ?? null}::timestamptz, ${after.id})`
        : sql.fragment`id < ${after.id}`,
    );
  }
  return db.any(sql.type(taskRow)`
    select ${columns} from tasks
    where ${sql.join(conditions, sql.fragment` and `)}
    order by ${due ? sql.fragment`due_at, id` : sql.fragment`id desc`}
    limit ${filter.limit}`);
}

/** Moves a (locked, pending) task to a new due time and the new job that will complete it then. */
export function rescheduleTask(db: CommonQueryMethods, id: number, change: { due: Due; jobId: string }) {
  return db.one(sql.type(taskRow)`
    update tasks set due_at = ${dueAtSql(change.due)}, job_id = ${change.jobId}, updated_at = now()
    where id = ${id}
    returning ${columns}`);
}

export function updateTaskText(
  db: CommonQueryMethods,
  id: number,
  change: { title?: string | undefined; description?: string | undefined },
) {
  return db.one(sql.type(taskRow)`
    update tasks
    set title = coalesce(${change.title ?? null}, title),
        description = coalesce(${change.description ?? null}, description),
        updated_at = now()
    where id = ${id}
    returning ${columns}`);
}

/** Null when the task is gone or no longer pending. */
export function markTaskCompleted(db: CommonQueryMethods, id: number) {
  return db.maybeOne(sql.type(taskRow)`
    update tasks set status = 'completed', completed_at = now(), updated_at = now()
    where id = ${id} and status = 'pending'
    returning ${columns}`);
}

const deletedRow = z.object({ id: z.bigint() });

export const deleteTaskRowToken = (id: number) => sql.type(deletedRow)`delete from tasks where id = ${id} returning id`;

export function deleteTaskRow(db: CommonQueryMethods, id: number) {
  return db.query(deleteTaskRowToken(id));
}

const completedRow = z.object({ id: idColumn, lateness_seconds: z.number(), schedule_id: idColumn.nullable() });

/**
 * Completes the pending tasks these jobs belong to. Matching on `job_id` (not on the job's data) means
 * only the task's own current job can complete it; a task already completed or deleted is left alone.
 */
export function completeTasksOfJobs(db: Connection, jobIds: readonly string[]) {
  return db.any(sql.type(completedRow)`
    update tasks set status = 'completed', completed_at = now(), updated_at = now()
    where job_id = any(${sql.array(jobIds, 'uuid')}) and status = 'pending'
    returning id, extract(epoch from completed_at - due_at)::float8 as lateness_seconds, schedule_id`);
}

const orphanRow = z.object({ id: idColumn, job_id: z.string().nullable(), due_at: timestampColumn });

/**
 * Pending tasks due within a minute (or overdue) whose completion job is missing or finished for good
 * (`failed` after its retries, or `completed`/`cancelled` without its task), at most `limit` of them. Only
 * those coming due are looked at, in the order of the pending tasks' due-time index: a lost job matters
 * when its task comes due, and a pass stays as cheap at millions of pending tasks as at a few (checking
 * every pending task took 4.8 s at 500,000 of them). pg-boss's `job` table is keyed on (name, id), so each
 * look-up is one index probe. (Plan checked: test/plans.test.ts.)
 */
export function findOrphanedTasks(db: Connection, limit: number) {
  return db.any(sql.type(orphanRow)`
    select t.id, t.job_id, t.due_at from tasks t
    where t.status = 'pending' and t.due_at <= now() + interval '1 minute'
      and not exists (
        select 1 from ${bossTable('job')} j
        where j.name = ${COMPLETE_TASK} and j.id = t.job_id and j.state in ('created', 'retry', 'active'))
    order by t.due_at, t.id
    limit ${limit}`);
}

const idRow = z.object({ id: idColumn });

/** Gives a still-pending task a new job id, only while its job is still `lostJobId`; null otherwise. */
export function replaceLostJob(db: Connection, id: number, lostJobId: string | null, jobId: string) {
  return db.maybeOne(sql.type(idRow)`
    update tasks set job_id = ${jobId}, updated_at = now()
    where id = ${id} and status = 'pending' and job_id is not distinct from ${lostJobId}::uuid
    returning id`);
}

const nextDueRow = z.object({
  wait_ms: z.number().nullable(),
  next_due_ms: z.number().nullable(),
  due_now: z.boolean(),
});

/**
 * Milliseconds until the earliest waiting completion job comes due, in the database's own clock (the
 * clock pg-boss fetches by), and that due time itself (epoch ms), both null when none waits; and whether a
 * job is due already. A job can be due by the time its notification is read (a task due now, or one that
 * fell due while the last fetch ran): no timer would fire for it, so the worker is woken at once. Parked
 * jobs (src/db/parking.ts) are left out.
 *
 * Each answer is the first entry of one range of pg-boss's (name, state, blocked, start_after) index, per
 * waiting state: one index probe each, however many jobs wait. (A single `min()` over both states, or an
 * `exists` the planner estimated as common, read every waiting job: 400 ms at 500,000 of them. Plan
 * checked: test/plans.test.ts.)
 */
export function nextDueJob(db: Connection) {
  const job = bossTable('job');
  const first = (state: 'created' | 'retry', future: boolean) => sql.fragment`
    (select start_after from ${job} where name = ${COMPLETE_TASK} and state = ${state} and not blocked
       ${future ? sql.fragment`and start_after > now()` : sql.fragment``}
     order by start_after limit 1)`;
  return db.one(sql.type(nextDueRow)`
    with firsts as (${first('created', false)} union all ${first('retry', false)}),
    nexts as (${first('created', true)} union all ${first('retry', true)})
    select
      (extract(epoch from next_due - now()) * 1000)::float8 as wait_ms,
      (extract(epoch from next_due) * 1000)::float8 as next_due_ms,
      coalesce((select min(start_after) <= now() from firsts), false) as due_now
    from (select min(start_after) as next_due from nexts) as earliest`);
}
