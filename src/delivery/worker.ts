import type { Job } from 'pg-boss';
import { coalesce } from '../coalesce.ts';
import { type Boss, DELIVER_WEBHOOK } from '../db/queues.ts';
import { disableEndpointOf, dropDelivery, loadDelivery, recordAttempt } from '../domain/webhooks/attempts.ts';
import { relayEvents } from '../domain/webhooks/outbox.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { version } from '../version.ts';
import { type Attempt, type DestinationSettings, deliver } from './send.ts';

/**
 * Webhooks, the service's third way in beside HTTP and the task worker: the outbox relay turns task events
 * into deliveries (src/domain/webhooks/outbox.ts), and the deliveries' jobs are worked here, each attempt
 * sent by src/delivery/send.ts. Deliveries of one endpoint run concurrently and in no particular order.
 */

export type DeliverySettings = DestinationSettings & {
  /** `user-agent` of every attempt: the service and its version. */
  readonly userAgent: string;
  /**
   * How many deliveries one fetch takes (attempted concurrently; the fetch loop waits for the slowest, at
   * most 10 s), and how many fetch loops run, so that one slow endpoint holds up only its loop's batch.
   * Two loops of ten: eight loops of five let a second worker process add almost nothing to a drain of task
   * completions (measured: two workers 1.0 times one, against 1.3 to 1.5 with one or two loops), as their
   * fetches share the worker's small pool with the completions.
   */
  readonly batchSize: number;
  readonly loops: number;
  /** pg-boss's poll for delivery jobs; the relay wakes the local worker at once when it writes some. */
  readonly pollIntervalSeconds: number;
  /** The relay's safety-net poll; every task event's NOTIFY wakes it sooner. */
  readonly relayIntervalMs: number;
};

/** The delivery settings that are not configuration. */
export const DELIVERY_DEFAULTS = {
  userAgent: `task-manager/${version} (webhooks)`,
  batchSize: 10,
  loops: 2,
  pollIntervalSeconds: 2,
  relayIntervalMs: 1_000,
} as const;

export type Deliveries = {
  /** A task event was announced: relay soon. */
  nudge(): void;
  stop(): Promise<void>;
};

type DeliveryJob = Job<{ deliveryId: string }>;

/** How long the relay waits after a task event's NOTIFY, to take the events of a burst together. */
const RELAY_DEBOUNCE_MS = 25;

/** A `Retry-After` longer than this is held to it. */
const MAX_RETRY_AFTER_SECONDS = 86_400;

const resultOf = (attempt: Attempt) => (attempt.status === null ? 'error' : `${Math.floor(attempt.status / 100)}xx`);

export async function startDeliveries(
  boss: Boss,
  settings: DeliverySettings,
  log: Logger,
  metrics: Metrics,
): Promise<Deliveries> {
  const db = boss.getDb();

  /** One attempt, recorded; the job is settled here (completed, or failed for pg-boss to retry). */
  const attemptOne = async (job: DeliveryJob) => {
    const delivery = await loadDelivery(db, job.data.deliveryId);
    if (delivery?.status !== 'pending') {
      await boss.complete(DELIVER_WEBHOOK, job.id); // its endpoint was deleted, or it ended already
      return;
    }
    if (!delivery.enabled) {
      await dropDelivery(db, delivery.id, 'the endpoint is disabled');
      metrics.webhookDeliveries.inc({ outcome: 'dropped' });
      await boss.complete(DELIVER_WEBHOOK, job.id);
      return;
    }
    const attempt = await deliver({
      url: delivery.url,
      id: delivery.id,
      body: delivery.body,
      secrets: delivery.secrets,
      userAgent: settings.userAgent,
      settings,
    });
    metrics.webhookAttempts.inc({ result: resultOf(attempt) });
    const answer = {
      statusCode: attempt.status,
      error: 'error' in attempt ? attempt.error : attempt.ok ? null : `answered ${attempt.status}`,
      response: 'response' in attempt ? attempt.response : null,
    };
    if (attempt.ok) {
      await recordAttempt(db, delivery.id, { ...answer, status: 'succeeded', nextAttemptAt: null });
      await boss.complete(DELIVER_WEBHOOK, job.id);
      metrics.webhookDeliveries.inc({ outcome: 'succeeded' });
      metrics.webhookDeliveryLatency.observe((Date.now() - delivery.event_at.getTime()) / 1000);
      return;
    }
    if (attempt.status === 410) {
      await disableEndpointOf(db, delivery.id);
      await recordAttempt(db, delivery.id, { ...answer, status: 'failed', nextAttemptAt: null });
      await boss.complete(DELIVER_WEBHOOK, job.id);
      metrics.webhookDeliveries.inc({ outcome: 'gone' });
      log.warn({ delivery: delivery.id }, 'a webhook endpoint answered 410 Gone: it is disabled');
      return;
    }
    // A failed attempt: pg-boss schedules the retry (backoff with jitter), or fails the job for good.
    await boss.fail(DELIVER_WEBHOOK, job.id, { message: answer.error });
    const next = await boss.getJobById(DELIVER_WEBHOOK, job.id);
    const retrying = next?.state === 'retry' || next?.state === 'created';
    let nextAttemptAt = retrying ? (next?.startAfter ?? null) : null;
    const retryAfter = 'retryAfterSeconds' in attempt ? attempt.retryAfterSeconds : null;
    if (nextAttemptAt && retryAfter !== null && (attempt.status === 429 || attempt.status === 503)) {
      // Retry-After asks for more patience than the backoff gives: wait that long (a day at most).
      const asked = new Date(Date.now() + Math.min(retryAfter, MAX_RETRY_AFTER_SECONDS) * 1000);
      if (asked > nextAttemptAt) {
        await boss.update(DELIVER_WEBHOOK, undefined, { id: job.id, startAfter: asked });
        nextAttemptAt = asked;
      }
    }
    await recordAttempt(db, delivery.id, { ...answer, status: retrying ? 'pending' : 'failed', nextAttemptAt });
    if (!retrying) metrics.webhookDeliveries.inc({ outcome: 'failed' });
  };

  const workerId = await boss.work<{ deliveryId: string }>(
    DELIVER_WEBHOOK,
    {
      batchSize: settings.batchSize,
      localConcurrency: settings.loops,
      pollingIntervalSeconds: settings.pollIntervalSeconds,
      burstWhenBatchFull: true,
    },
    async (jobs) => {
      const results = await Promise.allSettled(jobs.map(attemptOne));
      const failed = jobs.filter((_, i) => results[i]?.status === 'rejected').map((job) => job.id);
      if (failed.length > 0) {
        // A database error around an attempt: throwing makes pg-boss fail the jobs still active (those settled
        // above are not), so they are retried with the backoff; returning would have completed them.
        const errors = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
        log.error({ err: errors[0], jobs: failed }, 'webhook deliveries could not be attempted; pg-boss retries them');
        throw new AggregateError(errors, `${failed.length} webhook deliveries could not be attempted`);
      }
    },
  );

  let stopped = false;
  // With no enabled endpoint anywhere, notifications are ignored and the interval alone moves the relay's
  // place (an endpoint registered meanwhile waits at most that long): a drain's NOTIFY per batch would
  // otherwise cost every worker a write to the same row.
  let quiet = false;
  const relay = coalesce(async () => {
    try {
      for (;;) {
        const { events, deliveries, endpoints } = await relayEvents(boss);
        quiet = !endpoints;
        if (deliveries.length > 0) boss.notifyWorker(workerId);
        if (events === 0 || stopped) break;
      }
    } catch (error) {
      log.warn({ err: error }, 'relaying task events to webhooks failed; the next round retries');
    }
  });
  const timer = setInterval(() => void relay(), settings.relayIntervalMs);
  await relay();

  // A burst of task events (a drain commits one NOTIFY per batch, creates one each) is relayed together.
  let nudged: NodeJS.Timeout | undefined;
  return {
    nudge() {
      if (quiet) return;
      nudged ??= setTimeout(() => {
        nudged = undefined;
        void relay();
      }, RELAY_DEBOUNCE_MS);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(nudged);
      await relay.idle();
      await boss.offWork(DELIVER_WEBHOOK, { id: workerId });
    },
  };
}
