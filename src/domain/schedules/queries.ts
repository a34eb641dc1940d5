import { type FragmentSqlToken, sql } from 'slonik';
import { z } from 'zod';
import { idColumn } from '../../db/columns.ts';
import type { Connection } from '../../db/connection.ts';
import type { Actor } from '../users/user.ts';
import { scheduleRow, scheduleStateRow } from './schedule.ts';

const shown = sql.fragment`
  s.id, s.user_id, s.title, s.description, s.cron, s.time_zone, s.paused, t.due_at as next_due_at,
  t.id as next_task_id, s.skipped, s.created_at, s.updated_at`;
const withOccurrence = sql.fragment`schedules s left join tasks t on t.schedule_id = s.id and t.status = 'pending'`;

/** Admins reach every schedule; anyone else only their own. */
const visibleTo = (actor: Actor): FragmentSqlToken =>
  actor.role === 'admin' ? sql.fragment`true` : sql.fragment`s.user_id = ${actor.id}`;

export function findSchedule(db: Connection, actor: Actor, id: number) {
  return db.maybeOne(
    sql.type(scheduleRow)`select ${shown} from ${withOccurrence} where s.id = ${id} and ${visibleTo(actor)}`,
  );
}

/** Newest first, keyset-paginated by id. */
export function listSchedules(
  db: Connection,
  actor: Actor,
  filter: { userId?: number; beforeId?: number; limit: number },
) {
  const conditions = [visibleTo(actor)];
  if (filter.userId !== undefined) conditions.push(sql.fragment`s.user_id = ${filter.userId}`);
  if (filter.beforeId !== undefined) conditions.push(sql.fragment`s.id < ${filter.beforeId}`);
  return db.any(sql.type(scheduleRow)`
    select ${shown} from ${withOccurrence}
    where ${sql.join(conditions, sql.fragment` and `)}
    order by s.id desc limit ${filter.limit}`);
}

const countRow = z.object({ count: z.number() });

/** How many schedules the user has, with their user row locked (two creates cannot both pass a limit). */
export async function countSchedulesOf(db: Connection, userId: number): Promise<number> {
  await db.any(sql.type(z.object({}))`select 1 from users where id = ${userId} for update`);
  return db.oneFirst(sql.type(countRow)`select count(*)::int as count from schedules where user_id = ${userId}`);
}

const idRow = z.object({ id: idColumn });

/** A new schedule, paused: writing its first occurrence makes it active (it is active while it has one). */
export function insertSchedule(
  db: Connection,
  schedule: { userId: number; title: string; description: string; cron: string; timeZone: string },
) {
  return db.oneFirst(sql.type(idRow)`
    insert into schedules (user_id, title, description, cron, time_zone, paused, fires_at)
    values (${schedule.userId}, ${schedule.title}, ${schedule.description}, ${schedule.cron}, ${schedule.timeZone},
            true, null)
    returning id`);
}

/**
 * The schedule's row, locked until the transaction ends: every change to a schedule and its occurrences
 * happens one at a time. (Lock order: a schedule before its occurrence, everywhere.)
 */
export function lockSchedule(db: Connection, id: number, actor?: Actor) {
  return db.maybeOne(sql.type(scheduleStateRow)`
    select s.id, s.user_id, s.title, s.description, s.cron, s.time_zone, s.paused, s.fires_at
    from schedules s where s.id = ${id} ${actor ? sql.fragment`and ${visibleTo(actor)}` : sql.fragment``}
    for update`);
}

/** The schedules of the tasks of these jobs, locked in id order (before the tasks, as everywhere). */
export function lockSchedulesOfJobs(db: Connection, jobIds: readonly string[]) {
  return db.any(sql.type(scheduleStateRow)`
    select s.id, s.user_id, s.title, s.description, s.cron, s.time_zone, s.paused, s.fires_at from schedules s
    where s.id in (
      select schedule_id from tasks where job_id = any(${sql.array(jobIds, 'uuid')}) and schedule_id is not null)
    order by s.id for update`);
}

/** The schedule's text, cron, zone and pause as changed; `firesAt` the cron time of its pending occurrence. */
export function updateScheduleRow(
  db: Connection,
  id: number,
  change: {
    title: string;
    description: string;
    cron: string;
    timeZone: string;
    paused: boolean;
    firesAt: number | null;
    skipped?: number;
  },
) {
  return db.any(sql.type(z.object({}))`
    update schedules
    set title = ${change.title}, description = ${change.description}, cron = ${change.cron},
        time_zone = ${change.timeZone}, paused = ${change.paused},
        fires_at = ${change.firesAt === null ? null : new Date(change.firesAt).toISOString()}::timestamptz,
        skipped = skipped + ${change.skipped ?? 0}, updated_at = now()
    where id = ${id}`);
}

/**
 * Where each schedule's next occurrence stands: the cron time it stands for (null: none, the schedule is
 * paused), and how many times were skipped to it. One statement for any number of schedules.
 */
export function moveSchedulesOn(
  db: Connection,
  moves: readonly { id: number; firesAt: number | null; skipped: number }[],
) {
  return db.any(sql.type(z.object({}))`
    update schedules s
    set fires_at = v.fires_at, paused = v.fires_at is null, skipped = s.skipped + v.skipped
    from unnest(
      ${sql.array(
        moves.map((move) => move.id),
        'int8',
      )},
      ${sql.array(
        moves.map((move) => (move.firesAt === null ? null : new Date(move.firesAt).toISOString())),
        'timestamptz',
      )},
      ${sql.array(
        moves.map((move) => move.skipped),
        'int4',
      )}) as v(id, fires_at, skipped)
    where s.id = v.id`);
}

/** These schedules' rows, locked in id order (a schedule before its occurrence, everywhere). */
export function lockSchedules(db: Connection, ids: readonly number[]) {
  return db.any(sql.type(scheduleStateRow)`
    select s.id, s.user_id, s.title, s.description, s.cron, s.time_zone, s.paused, s.fires_at
    from schedules s where s.id = any(${sql.array(ids, 'int8')})
    order by s.id for update`);
}

/** Which of these schedules have a pending occurrence. */
export function schedulesWithOccurrence(db: Connection, ids: readonly number[]) {
  return db.any(sql.type(z.object({ schedule_id: idColumn }))`
    select schedule_id from tasks where schedule_id = any(${sql.array(ids, 'int8')}) and status = 'pending'`);
}

export function deleteScheduleRow(db: Connection, id: number) {
  return db.any(sql.type(z.object({}))`delete from schedules where id = ${id}`);
}

const pendingRow = z.object({ id: idColumn, job_id: z.string().nullable() });

/** The schedule's pending occurrence, locked (after its schedule). */
export function lockPendingOccurrence(db: Connection, scheduleId: number) {
  return db.maybeOne(sql.type(pendingRow)`
    select id, job_id from tasks where schedule_id = ${scheduleId} and status = 'pending' for update`);
}

/** Active schedules that lost their pending occurrence (an operator's delete), at most `limit`. */
export function findSchedulesWithoutOccurrence(db: Connection, limit: number) {
  return db.any(sql.type(idRow)`
    select s.id from schedules s
    where not s.paused
      and not exists (select 1 from tasks t where t.schedule_id = s.id and t.status = 'pending')
    order by s.id limit ${limit}`);
}

/** New text of a schedule applies to its pending occurrence too. */
export const renameOccurrenceToken = (scheduleId: number, title: string, description: string) =>
  sql.type(z.object({}))`
    update tasks set title = ${title}, description = ${description}, updated_at = now()
    where schedule_id = ${scheduleId} and status = 'pending'`;
