import { createHash } from 'node:crypto';
import type { DatabasePool } from 'slonik';
import { bossDb } from '../../db/bossDb.ts';
import type { Boss } from '../../db/queues.ts';
import { AppError, conflict, forbidden, notFound } from '../../errors.ts';
import { keysetPage } from '../keysetPage.ts';
import { claimIdempotencyKey, findIdempotentResponse } from '../tasks/idempotency.ts';
import type { Actor } from '../users/user.ts';
import { CronError, checkTimeZone, localIso, nextFireAfter, parseCron, shortestIntervalSeconds } from './cron.ts';
import { dropPendingOccurrence, nextAfter, type Transaction, writeOccurrences } from './occurrences.ts';
import {
  countSchedulesOf,
  deleteScheduleRow,
  findSchedule,
  insertSchedule,
  listSchedules,
  lockSchedule,
  renameOccurrenceToken,
  updateScheduleRow,
} from './queries.ts';
import type { Schedule } from './schedule.ts';

export type ScheduleDeps = {
  readonly db: DatabasePool;
  readonly boss: Boss;
  readonly parkBeyondSeconds: number;
  /** A cron firing more often than this is refused (SCHEDULE_MIN_INTERVAL_SECONDS, 60). */
  readonly minIntervalSeconds: number;
};

/** At most this many schedules per user. */
export const SCHEDULES_PER_USER = 100;

const invalid = (field: string, message: string) =>
  new AppError(400, 'validation_failed', 'the request has invalid fields', [{ field, message }]);

/**
 * The cron and zone, checked: a cron that does not parse, never fires or fires more often than the minimum
 * interval, or an unknown zone, is a 400 naming the field. Resolves with the zone's canonical name.
 */
function checkTiming(deps: ScheduleDeps, cron: string, timeZone: string): string {
  try {
    const zone = checkTimeZone(timeZone);
    const parsed = parseCron(cron);
    const shortest = shortestIntervalSeconds(parsed, Date.now());
    if (shortest < deps.minIntervalSeconds) {
      throw new CronError(
        'cron',
        `fires every ${shortest} s at times; the shortest interval allowed is ${deps.minIntervalSeconds} s`,
      );
    }
    return zone;
  } catch (error) {
    if (error instanceof CronError) throw invalid(error.field, error.message);
    throw error;
  }
}

const transaction = (tx: Parameters<Parameters<DatabasePool['transaction']>[0]>[0]): Transaction => ({
  sql: tx,
  jobs: bossDb(tx),
});

/** The schedule as the API shows it, read in `tx` (its pending occurrence as the transaction left it). */
async function shown(db: Parameters<typeof findSchedule>[0], actor: Actor, id: number): Promise<Schedule> {
  const schedule = await findSchedule(db, actor, id);
  if (!schedule) throw notFound('schedule');
  return schedule;
}

/**
 * Creates a schedule and, unless paused, its first occurrence with its job, in ONE transaction. With an
 * idempotency key, a retry with the same body gets the first answer and creates nothing.
 * @throws AppError 400 for a bad cron or zone; 409 beyond SCHEDULES_PER_USER; 422 for a key used with
 * another body.
 */
export async function createSchedule(
  deps: ScheduleDeps,
  actor: Actor,
  input: { title: string; description: string; cron: string; timeZone: string; paused: boolean },
  idempotencyKey?: string,
): Promise<{ schedule: Schedule; replayed: boolean }> {
  const timeZone = checkTiming(deps, input.cron, input.timeZone);
  const fingerprint = createHash('sha256')
    .update(JSON.stringify(['schedule', input.title, input.description, input.cron, timeZone, input.paused]))
    .digest('hex');
  if (idempotencyKey !== undefined) {
    const first = await findIdempotentResponse(deps.db, actor.id, idempotencyKey);
    if (first) {
      if (first.fingerprint !== fingerprint) {
        throw new AppError(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with another body');
      }
      return { schedule: first.response as unknown as Schedule, replayed: true };
    }
  }
  const schedule = await deps.db.transaction(async (tx) => {
    if ((await countSchedulesOf(tx, actor.id)) >= SCHEDULES_PER_USER) {
      throw conflict(`at most ${SCHEDULES_PER_USER} schedules per user`);
    }
    const id = await insertSchedule(tx, { userId: actor.id, ...input, timeZone });
    if (!input.paused) await resume(deps, transaction(tx), id);
    const created = await shown(tx, actor, id);
    if (idempotencyKey !== undefined) {
      const claimed = await claimIdempotencyKey(tx, {
        userId: actor.id,
        key: idempotencyKey,
        fingerprint,
        response: created,
      });
      if (!claimed) throw conflict('this Idempotency-Key is in use by a request still running: send it again');
    }
    return created;
  });
  return { schedule, replayed: false };
}

/** Writes the next future occurrence of a (locked or new) schedule, counting nothing as skipped. */
async function resume(deps: ScheduleDeps, tx: Transaction, id: number): Promise<void> {
  const state = await lockSchedule(tx.sql, id);
  if (!state) throw notFound('schedule');
  const { at } = nextAfter({ ...state, fires_at: null }, Date.now());
  if (at === null) throw invalid('cron', 'never fires again');
  await writeOccurrences(deps, tx, [{ schedule: { ...state, paused: false }, at, skipped: 0 }]);
}

/**
 * One page of schedules, newest first; admins see everyone's (or one user's).
 * @throws AppError 403 when a non-admin asks for another user's.
 */
export async function listSchedulePage(
  deps: ScheduleDeps,
  actor: Actor,
  query: { limit: number; userId?: number | undefined; beforeId?: number | undefined },
): Promise<{ schedules: Schedule[]; nextCursor: number | null }> {
  if (query.userId !== undefined && actor.role !== 'admin' && query.userId !== actor.id) {
    throw forbidden("only an admin may see other users' schedules");
  }
  const rows = await listSchedules(deps.db, actor, {
    limit: query.limit + 1,
    ...(query.userId !== undefined && { userId: query.userId }),
    ...(query.beforeId !== undefined && { beforeId: query.beforeId }),
  });
  const { page, nextCursor } = keysetPage(rows, query.limit, (last) => last.id);
  return { schedules: page, nextCursor };
}

/** @throws AppError 404 when it does not exist or is not the actor's to see. */
export const getSchedule = (deps: ScheduleDeps, actor: Actor, id: number) => shown(deps.db, actor, id);

/**
 * Changes a schedule in ONE transaction with its pending occurrence: new text applies to it too; a new
 * cron or zone moves it to the new next time; pausing deletes it (and its job); resuming writes the next
 * future one.
 * @throws AppError 404; 400 for a bad cron or zone.
 */
export function updateSchedule(
  deps: ScheduleDeps,
  actor: Actor,
  id: number,
  change: {
    title?: string | undefined;
    description?: string | undefined;
    cron?: string | undefined;
    timeZone?: string | undefined;
    paused?: boolean | undefined;
  },
): Promise<Schedule> {
  return deps.db.transaction(async (tx) => {
    const current = await lockSchedule(tx, id, actor);
    if (!current) throw notFound('schedule');
    const cron = change.cron ?? current.cron;
    const timeZone =
      change.cron !== undefined || change.timeZone !== undefined
        ? checkTiming(deps, cron, change.timeZone ?? current.time_zone)
        : current.time_zone;
    const paused = change.paused ?? current.paused;
    const next = {
      title: change.title ?? current.title,
      description: change.description ?? current.description,
      cron,
      timeZone,
    };
    const retimed = cron !== current.cron || timeZone !== current.time_zone;
    const rewrite = !paused && (retimed || current.paused); // a new pending occurrence follows
    const on = transaction(tx);
    if (paused || retimed) await dropPendingOccurrence(deps, on, id);
    // Paused until the new occurrence is written (a schedule is active exactly while it has one).
    const firesAt = paused || rewrite || current.fires_at === null ? null : Date.parse(current.fires_at);
    await updateScheduleRow(tx, id, { ...next, paused: firesAt === null, firesAt });
    if (rewrite) {
      await resume(deps, on, id);
    } else if (!paused && (change.title !== undefined || change.description !== undefined)) {
      await tx.any(renameOccurrenceToken(id, next.title, next.description));
    }
    return shown(tx, actor, id);
  });
}

/**
 * Deletes the schedule with its pending occurrence and that one's job, in ONE transaction; completed
 * occurrences stay, with `schedule_id` null.
 * @throws AppError 404.
 */
export function deleteSchedule(deps: ScheduleDeps, actor: Actor, id: number): Promise<void> {
  return deps.db.transaction(async (tx) => {
    if (!(await lockSchedule(tx, id, actor))) throw notFound('schedule');
    await dropPendingOccurrence(deps, transaction(tx), id);
    await deleteScheduleRow(tx, id);
  });
}

/**
 * The next `count` times the schedule fires after `from`, in UTC and in its zone, so a user can check the
 * DST rule. (Its pending occurrence may have been moved by hand; these are the cron's times.)
 * @throws AppError 404.
 */
export async function upcomingTimes(
  deps: ScheduleDeps,
  actor: Actor,
  id: number,
  query: { count: number; from: number },
): Promise<{ due_at: string; local: string }[]> {
  const schedule = await shown(deps.db, actor, id);
  return timesOf(schedule.cron, schedule.time_zone, query);
}

/**
 * The times a schedule of this cron and zone would fire, before it is saved (the web page shows them).
 * @throws AppError 400 naming the field, as creating it would.
 */
export function previewTimes(
  deps: ScheduleDeps,
  query: { cron: string; timeZone: string; count: number; from: number },
): { due_at: string; local: string }[] {
  return timesOf(query.cron, checkTiming(deps, query.cron, query.timeZone), query);
}

function timesOf(cronText: string, zone: string, query: { count: number; from: number }) {
  const cron = parseCron(cronText);
  const times: { due_at: string; local: string }[] = [];
  for (let at = nextFireAfter(cron, zone, query.from); at !== null && times.length < query.count; ) {
    times.push({ due_at: new Date(at).toISOString(), local: localIso(at, zone) });
    at = nextFireAfter(cron, zone, at);
  }
  return times;
}
