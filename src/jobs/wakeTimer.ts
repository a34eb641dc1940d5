import { coalesce } from '../coalesce.ts';
import { onBossDb } from '../db/connection.ts';
import { listen } from '../db/listen.ts';
import type { Boss } from '../db/queues.ts';
import { nextDueJob } from '../domain/tasks/queries.ts';
import type { Logger } from '../log.ts';

/** Coalesces the look-ups a burst of notifications asks for. */
const DEBOUNCE_MS = 10;

export type WakeTimer = {
  /** Reads the next due time again: for jobs written without a task event (the reconciliation's). */
  rearm(): Promise<void>;
  /**
   * The due time (epoch ms, as stored) of the earliest job not yet due when it last read, null when none
   * was; and how many times it has read. What it is doing, for a test to wait on rather than sleep.
   */
  state(): { nextDueAt: number | null; reads: number };
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
  /** However far off the next job is, look again at least this often (a safety net, like the poll). */
  maxSleepMs: number;
  /** Told of every task events notification too (and of a reconnect): the webhook relay listens here. */
  onNotification?: () => void;
}): Promise<WakeTimer> {
  const { boss, workerId, log, maxSleepMs } = options;
  const db = onBossDb(boss.getDb());
  let timer: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let stopped = false;
  let nextDueAt: number | null = null;
  let reads = 0;

  const wake = () => {
    if (stopped) return;
    boss.notifyWorker(workerId);
    void arm(); // and wait for the next one
  };

  /** Reads the next due time and arms the timer; notifications that come meanwhile cost one more read. */
  const arm = coalesce(async () => {
    try {
      const { wait_ms: waitMs, next_due_ms: nextDueMs, due_now: dueNow } = await nextDueJob(db);
      reads++;
      nextDueAt = nextDueMs;
      clearTimeout(timer);
      if (stopped) return;
      // pg-boss fetches again after a notification, even one that comes while it fetches or works.
      if (dueNow) boss.notifyWorker(workerId);
      // One millisecond late rather than early: pg-boss fetches jobs whose start_after has passed.
      const delayMs = Math.min((waitMs ?? maxSleepMs) + 1, maxSleepMs);
      timer = setTimeout(waitMs === null ? () => void arm() : wake, delayMs);
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
    state: () => ({ nextDueAt, reads }),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(debounce);
      await arm.idle();
      await listener.close();
    },
  };
}
