import { z } from 'zod';
import { coalesce } from '../coalesce.ts';
import { listen } from '../db/listen.ts';
import { BOSS_SCHEMA, type Boss, COMPLETE_TASK } from '../db/queues.ts';
import type { Logger } from '../log.ts';

/**
 * Milliseconds until the earliest waiting job of the queue comes due, in the database's own clock (the
 * clock pg-boss fetches by), null when none waits; and whether a job is due already. A job can be due by
 * the time its notification is read (a task due now, or one that fell due while the last fetch ran): no
 * timer would fire for it, so the worker is woken at once. Parked jobs (src/db/parking.ts) are left out.
 *
 * Each answer is the first entry of one range of pg-boss's (name, state, blocked, start_after) index, per
 * waiting state: one index probe each, however many jobs wait. (A single `min()` over both states, or an
 * `exists` the planner estimated as common, read every waiting job: 400 ms at 500,000 of them.)
 */
export const NEXT_DUE_SQL = `
  with firsts as (
    (select start_after from ${BOSS_SCHEMA}.job where name = $1 and state = 'created' and not blocked
     order by start_after limit 1)
    union all
    (select start_after from ${BOSS_SCHEMA}.job where name = $1 and state = 'retry' and not blocked
     order by start_after limit 1)),
  nexts as (
    (select start_after from ${BOSS_SCHEMA}.job where name = $1 and state = 'created' and not blocked
       and start_after > now() order by start_after limit 1)
    union all
    (select start_after from ${BOSS_SCHEMA}.job where name = $1 and state = 'retry' and not blocked
       and start_after > now() order by start_after limit 1))
  select
    (select extract(epoch from min(start_after) - now()) * 1000 from nexts) as wait_ms,
    coalesce((select min(start_after) <= now() from firsts), false) as due_now`;
const nextDue = z.object({ wait_ms: z.coerce.number().nullable(), due_now: z.boolean() });

/** However far off the next job is, look again at least this often (a safety net, like the poll). */
const MAX_SLEEP_MS = 60_000;
/** Coalesces the look-ups a burst of notifications asks for. */
const DEBOUNCE_MS = 10;

export type WakeTimer = {
  /** Reads the next due time again: for jobs written without a task event (the reconciliation's). */
  rearm(): Promise<void>;
  stop(): Promise<void>;
};

/**
 * Wakes the worker at the moment the next job comes due, rather than at its next poll: a timer armed to
 * the earliest `start_after` of the queue. Every task written announces itself (the `task_events` NOTIFY,
 * sent at commit), and the timer is then re-armed from the table, so a job scheduled earlier than the armed
 * time is not missed; a cancelled or deleted job only causes a harmless early wake. After a lost LISTEN
 * connection comes back, the earliest time is read again. Polling stays as the safety net.
 */
export async function startWakeTimer(options: {
  boss: Boss;
  workerId: string;
  listenUrl: string;
  log: Logger;
  /** Told of every task events notification too (and of a reconnect): the webhook relay listens here. */
  onNotification?: () => void;
}): Promise<WakeTimer> {
  const { boss, workerId, log } = options;
  let timer: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let stopped = false;

  const wake = () => {
    if (stopped) return;
    boss.notifyWorker(workerId);
    void arm(); // and wait for the next one
  };

  /** Reads the next due time and arms the timer; notifications that come meanwhile cost one more read. */
  const arm = coalesce(async () => {
    try {
      const { rows } = await boss.getDb().executeSql(NEXT_DUE_SQL, [COMPLETE_TASK]);
      const { wait_ms: waitMs, due_now: dueNow } = nextDue.parse(rows[0]);
      clearTimeout(timer);
      if (stopped) return;
      // pg-boss fetches again after a notification, even one that comes while it fetches or works.
      if (dueNow) boss.notifyWorker(workerId);
      // One millisecond late rather than early: pg-boss fetches jobs whose start_after has passed.
      timer = setTimeout(
        waitMs === null ? () => void arm() : wake,
        Math.min((waitMs ?? MAX_SLEEP_MS) + 1, MAX_SLEEP_MS),
      );
    } catch (error) {
      log.warn({ err: error }, 'reading the next due time failed; trying again in a second');
      clearTimeout(timer);
      if (!stopped) timer = setTimeout(() => void arm(), 1_000);
    }
  });

  const listener = await listen({
    url: options.listenUrl,
    channel: 'task_events',
    log,
    onNotification: () => {
      // At most DEBOUNCE_MS after the first of a burst: a timer restarted by every notification would never
      // fire while they keep coming (a busy service), and a task moved sooner would wait for the old time.
      debounce ??= setTimeout(() => {
        debounce = undefined;
        void arm();
      }, DEBOUNCE_MS);
      options.onNotification?.();
    },
    onReconnect: () => {
      options.onNotification?.();
      return arm(); // notifications were lost meanwhile: read the earliest time again
    },
  });
  await arm();

  return {
    rearm: arm,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(debounce);
      await arm.idle();
      await listener.close();
    },
  };
}
