import type { Config } from '../config.ts';
import { onBossDb } from '../db/connection.ts';
import { parkFarJobs, unparkDueJobs } from '../db/parking.ts';
import { type Boss, COMPLETE_TASK } from '../db/queues.ts';
import { type DeliverySettings, startDeliveries, USER_AGENT } from '../delivery/deliveries.ts';
import { destinationSettings } from '../delivery/send.ts';
import { purgeExpired } from '../domain/retention.ts';
import { type Completed, completeTasks, repairSchedules, rescheduleOrphanedTasks } from '../domain/tasks/completion.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Timing } from '../timing.ts';
import { startDeliveryBoss } from './boss.ts';
import { startWakeTimer, type WakeTimer } from './wakeTimer.ts';

export type WorkerSettings = {
  /** The safety net: the wake timer (with `listenUrl`) wakes the worker when a job comes due. */
  readonly pollIntervalSeconds: number;
  /** Where the wake timer LISTENs for new tasks; without it, the worker only polls. */
  readonly listenUrl?: string;
  readonly batchSize: number;
  /** How often pending tasks without a live job are looked for and rescheduled. */
  readonly reconcileIntervalSeconds: number;
  /** Webhook deliveries, worked beside the task completions on a pool of their own at this URL. */
  readonly deliveries: DeliverySettings & { readonly databaseUrl: string; readonly queryTimeoutMs?: number };
  readonly timing: Timing;
};

export type Worker = {
  /** The wake timer, when the worker listens (what it is armed for: tests wait on it). */
  readonly wake: WakeTimer | null;
  /** Resolves once the maintenance passes begun so far (unpark, reconcile, purge) have run: tests wait on it. */
  maintained(): Promise<void>;
  stop(): Promise<void>;
};

/** The worker's settings as the configuration gives them. */
export const workerSettings = (
  config: Pick<
    Config,
    | 'WORKER_POLL_INTERVAL_SECONDS'
    | 'WORKER_BATCH_SIZE'
    | 'RECONCILE_INTERVAL_SECONDS'
    | 'WEBHOOK_ALLOW_PRIVATE_NETWORKS'
    | 'WEBHOOK_ALLOW_HTTP'
    | 'WEBHOOK_DELIVERY_SLOTS'
    | 'WEBHOOK_DELIVERY_SLOTS_PER_USER'
    | 'WEBHOOK_DELIVERY_PER_ENDPOINT'
    | 'WEBHOOK_POOL_SIZE'
    | 'WEBHOOK_POLL_INTERVAL_SECONDS'
    | 'WEBHOOK_DISABLE_AFTER'
    | 'DATABASE_QUERY_TIMEOUT_SECONDS'
  >,
  urls: { databaseUrl: string; listenUrl?: string },
  timing: Timing,
): WorkerSettings => ({
  timing,
  ...(urls.listenUrl && { listenUrl: urls.listenUrl }),
  pollIntervalSeconds: config.WORKER_POLL_INTERVAL_SECONDS,
  batchSize: config.WORKER_BATCH_SIZE,
  reconcileIntervalSeconds: config.RECONCILE_INTERVAL_SECONDS,
  deliveries: {
    ...destinationSettings(config),
    userAgent: USER_AGENT,
    relayIntervalMs: timing.relayIntervalMs,
    attemptTimeoutMs: timing.webhookAttemptTimeoutMs,
    slots: config.WEBHOOK_DELIVERY_SLOTS,
    slotsPerUser: config.WEBHOOK_DELIVERY_SLOTS_PER_USER,
    perEndpoint: config.WEBHOOK_DELIVERY_PER_ENDPOINT,
    poolSize: config.WEBHOOK_POOL_SIZE,
    pollIntervalSeconds: config.WEBHOOK_POLL_INTERVAL_SECONDS,
    disableAfterFailingSeconds: config.WEBHOOK_DISABLE_AFTER,
    databaseUrl: urls.databaseUrl,
    queryTimeoutMs: config.DATABASE_QUERY_TIMEOUT_SECONDS * 1000,
  },
});

/**
 * Works the task-completion queue. Each batch completes its tasks in one statement (see
 * `completeTasks`), logged only once it has committed; pg-boss then completes the jobs. A failure
 * changes nothing, and pg-boss retries the batch's jobs with backoff. A reconciliation pass runs at start
 * and then every `reconcileIntervalSeconds`.
 */
export async function startWorker(
  boss: Boss,
  settings: WorkerSettings,
  log: Logger,
  metrics: Metrics,
): Promise<Worker> {
  const workerId = await boss.work(
    COMPLETE_TASK,
    {
      batchSize: settings.batchSize,
      pollingIntervalSeconds: settings.pollIntervalSeconds,
      // A full batch means more are due: fetch again at once instead of waiting out the poll.
      burstWhenBatchFull: true,
    },
    async (jobs) => {
      const jobIds = jobs.map((job) => job.id);
      const endBatch = metrics.workerBatchDuration.startTimer();
      let completed: Completed[];
      try {
        completed = await completeTasks({ boss, parkBeyondSeconds: settings.timing.parkBeyondSeconds }, jobIds);
      } catch (error) {
        metrics.workerBatchFailures.inc();
        log.error({ err: error, jobs: jobIds }, 'task completion failed; pg-boss will retry');
        throw error;
      } finally {
        endBatch();
      }
      metrics.tasksCompleted.inc(completed.length);
      for (const task of completed) metrics.completionLateness.observe(task.latenessSeconds);
      log.info({ jobs: jobIds.length, completed: completed.map((task) => task.id) }, 'completed tasks');
    },
  );

  const { databaseUrl, queryTimeoutMs, ...deliverySettings } = settings.deliveries;
  const deliveryBoss = await startDeliveryBoss({
    url: databaseUrl,
    log,
    poolSize: deliverySettings.poolSize,
    ...(queryTimeoutMs && { queryTimeoutMs }),
  });
  const deliveries = await startDeliveries(deliveryBoss, deliverySettings, log, metrics);
  const wake = settings.listenUrl
    ? await startWakeTimer({
        boss,
        workerId,
        listenUrl: settings.listenUrl,
        log,
        maxSleepMs: settings.timing.wakeMaxSleepMs,
        onNotification: deliveries.nudge,
      })
    : null;

  let running: Promise<void> = Promise.resolve();
  const reconcile = async () => {
    try {
      const rescheduled = await rescheduleOrphanedTasks(boss, settings.timing.parkBeyondSeconds);
      for (const task of rescheduled) {
        log.warn(task, 'rescheduled a pending task whose job was missing or had failed');
      }
      const repaired = await repairSchedules({ boss, parkBeyondSeconds: settings.timing.parkBeyondSeconds });
      for (const occurrence of repaired) {
        log.warn(occurrence, 'wrote the next occurrence of a schedule that had lost its pending one');
      }
      // Those jobs announce themselves with no task event: the timer looks for them.
      if (rescheduled.length > 0 || repaired.length > 0) await wake?.rearm();
    } catch (error) {
      log.error({ err: error }, 'reconciliation failed; it runs again at the next interval');
    }
  };
  // Retention (src/domain/retention.ts), at the same interval: what is past its keeping time goes.
  const purge = async () => {
    try {
      const purged = await purgeExpired(onBossDb(boss.getDb()));
      if (Object.values(purged).some((n) => n > 0)) log.info({ purged }, 'deleted rows past their retention');
    } catch (error) {
      log.error({ err: error }, 'the retention pass failed; it runs again at the next interval');
    }
  };
  // Parked jobs (due beyond the horizon) are unparked well before they come due; then the timer looks.
  // Jobs an older version sent far ahead unparked are parked.
  const unpark = async () => {
    try {
      const parked = await parkFarJobs(onBossDb(boss.getDb()), settings.timing.parkBeyondSeconds);
      if (parked > 0) log.info({ parked }, 'parked jobs due far ahead');
      const unparked = await unparkDueJobs(onBossDb(boss.getDb()), settings.timing.parkBeyondSeconds);
      if (unparked > 0) {
        log.debug({ unparked }, 'unparked jobs coming due');
        await wake?.rearm();
      }
    } catch (error) {
      log.error({ err: error }, 'unparking jobs failed; it runs again at the next interval');
    }
  };
  running = unpark().then(reconcile).then(purge);
  const timer = setInterval(() => {
    running = running.then(reconcile).then(purge);
  }, settings.reconcileIntervalSeconds * 1000);
  const unparkTimer = setInterval(() => {
    running = running.then(unpark);
  }, settings.timing.unparkIntervalSeconds * 1000);
  return {
    wake,
    maintained: () => running,
    async stop() {
      clearInterval(timer);
      clearInterval(unparkTimer);
      await wake?.stop();
      await deliveries.stop();
      await running;
      await deliveryBoss.stop({ graceful: false });
    },
  };
}
