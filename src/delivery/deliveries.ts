import type { Job } from 'pg-boss';
import { coalesce } from '../coalesce.ts';
import { onBossDb } from '../db/connection.ts';
import { type Boss, DELIVER_WEBHOOK } from '../db/queues.ts';
import { disableEndpointOf, dropDelivery, loadDelivery, recordAttempt } from '../domain/webhooks/attempts.ts';
import { type DeliveryJobData, relayEvents } from '../domain/webhooks/outbox.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { version } from '../version.ts';
import { type Attempt, type DestinationSettings, deliver } from './send.ts';

/**
 * Webhooks, the service's third way in beside HTTP and the task worker: the outbox relay turns task events
 * into deliveries (src/domain/webhooks/outbox.ts), and the deliveries' jobs are attempted here, each by
 * src/delivery/send.ts, on a pg-boss of their own (its own pool), so a delivery storm never takes the
 * completions' connections.
 *
 * Fair between tenants (docs/webhooks.md, "Fair between users"): each attempt holds one of the process's
 * `slots` while it runs, and is not held up by any other (no batch waits for its slowest). One user's
 * deliveries run at most `slotsPerUser` at once across every worker (pg-boss's `groupConcurrency`, the user
 * being the job's group), so a user whose endpoints hang costs that user, while everyone else's deliveries
 * find a free slot at once; and one endpoint has at most `perEndpoint` attempts running in a process (the
 * others of its jobs wait here, in their owner's share).
 */

export type DeliverySettings = DestinationSettings & {
  /** `user-agent` of every attempt: the service and its version. */
  readonly userAgent: string;
  /** Attempts running at once in this process. */
  readonly slots: number;
  /** One user's deliveries running at once, across every worker process. */
  readonly slotsPerUser: number;
  /** Attempts running at once to one endpoint, in a worker process. */
  readonly perEndpoint: number;
  /** Connections of the deliveries' own pool. */
  readonly poolSize: number;
  /** How often the queue is looked at for retries come due; new deliveries wake the local worker at once. */
  readonly pollIntervalSeconds: number;
  /** The relay's safety-net poll; every task event's NOTIFY wakes it sooner. */
  readonly relayIntervalMs: number;
  /** One attempt's whole exchange. */
  readonly attemptTimeoutMs: number;
  /** An endpoint that failed every attempt for this long is disabled (WEBHOOK_DISABLE_AFTER, 5 days). */
  readonly disableAfterFailingSeconds: number;
};

/** `user-agent` of every attempt. */
export const USER_AGENT = `task-manager/${version} (webhooks)`;

export type Deliveries = {
  /** A task event was announced: relay soon. */
  nudge(): void;
  stop(): Promise<void>;
};

type DeliveryJob = Job<DeliveryJobData>;

/** How long the relay waits after a task event's NOTIFY, to take the events of a burst together. */
const RELAY_DEBOUNCE_MS = 25;

/**
 * Events committed behind an older transaction still running (a long write anywhere on the server) are
 * looked for again after 25 ms, then 50, 100 and 200, then every 250 ms until it ends: without it they
 * waited for the relay's interval (a second), the tail of a healthy user's deliveries under load.
 */
const RELAY_WAITING_MAX_MS = 250;

/** While attempts run, how long a refill waits for more slots to free before it fetches. */
const REFILL_GATHER_MS = 10;

/** A `Retry-After` longer than this is held to it. */
const MAX_RETRY_AFTER_SECONDS = 86_400;

const resultOf = (attempt: Attempt) => (attempt.status === null ? 'error' : `${Math.floor(attempt.status / 100)}xx`);

/**
 * Starts attempting deliveries on `boss` (the deliveries' own pg-boss: src/jobs/boss.ts, startDeliveryBoss)
 * and relaying task events into them. Stopping aborts the attempts in flight; pg-boss retries their jobs
 * after the backoff, here or on another worker (at least once).
 */
export async function startDeliveries(
  boss: Boss,
  settings: DeliverySettings,
  log: Logger,
  metrics: Metrics,
): Promise<Deliveries> {
  const db = onBossDb(boss.getDb());
  const stopping = new AbortController();

  /** One attempt, recorded; the job is settled here (completed, or failed for pg-boss to retry). */
  const attemptOne = async (job: DeliveryJob) => {
    const delivery = await loadDelivery(db, job.data.deliveryId);
    if (delivery?.status !== 'pending') {
      await boss.complete(DELIVER_WEBHOOK, job); // its endpoint was deleted, or it ended already
      return;
    }
    if (!delivery.enabled) {
      await dropDelivery(db, delivery.id, 'the endpoint is disabled');
      metrics.webhookDeliveries.inc({ outcome: 'dropped' });
      await boss.complete(DELIVER_WEBHOOK, job);
      return;
    }
    const attempt = await deliver({
      url: delivery.url,
      id: delivery.id,
      body: delivery.body,
      secrets: delivery.secrets,
      userAgent: settings.userAgent,
      settings,
      timeoutMs: settings.attemptTimeoutMs,
      signal: stopping.signal,
    });
    if ('stopped' in attempt) {
      // Not an attempt to record: pg-boss retries the job after its backoff, here or on another worker.
      await boss.fail(DELIVER_WEBHOOK, job, { message: 'the worker stopped during the attempt' });
      return;
    }
    metrics.webhookAttempts.inc({ result: resultOf(attempt) });
    const answer = {
      statusCode: attempt.status,
      error: 'error' in attempt ? attempt.error : attempt.ok ? null : `answered ${attempt.status}`,
      response: 'response' in attempt ? attempt.response : null,
    };
    const record = (outcome: Pick<Parameters<typeof recordAttempt>[2], 'status' | 'nextAttemptAt'>) =>
      recordAttempt(db, delivery.id, { ...answer, ...outcome }, settings.disableAfterFailingSeconds).then(
        ({ disabled }) => {
          if (disabled) {
            const span = settings.disableAfterFailingSeconds;
            log.warn(
              { delivery: delivery.id, seconds: span },
              'a webhook endpoint failed every attempt that long: disabled',
            );
          }
        },
      );
    if (attempt.ok) {
      await record({ status: 'succeeded', nextAttemptAt: null });
      await boss.complete(DELIVER_WEBHOOK, job);
      metrics.webhookDeliveries.inc({ outcome: 'succeeded' });
      metrics.webhookDeliveryLatency.observe((Date.now() - Date.parse(delivery.event_at)) / 1000);
      return;
    }
    if ('refused' in attempt || attempt.status === 410) {
      // No later attempt can do better: the address rule refused it, or the endpoint is gone (then disabled).
      if (attempt.status === 410) await disableEndpointOf(db, delivery.id, 'answered 410 Gone');
      await record({ status: 'failed', nextAttemptAt: null });
      await boss.complete(DELIVER_WEBHOOK, job);
      metrics.webhookDeliveries.inc({ outcome: attempt.status === 410 ? 'gone' : 'refused' });
      log.warn({ delivery: delivery.id, error: answer.error }, 'a webhook delivery failed for good');
      return;
    }
    // A failed attempt: pg-boss schedules the retry (backoff with jitter), or fails the job for good.
    await boss.fail(DELIVER_WEBHOOK, job, { message: answer.error });
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
    await record({ status: retrying ? 'pending' : 'failed', nextAttemptAt });
    if (!retrying) metrics.webhookDeliveries.inc({ outcome: 'failed' });
  };

  // The slots: the jobs this process runs (attempting, or waiting for their endpoint), and how many
  // attempts run to each endpoint here; a job over its endpoint's limit waits for one of them to end.
  const running = new Map<string, DeliveryJob>();
  const perEndpoint = new Map<number, { count: number; waiting: (() => void)[] }>();
  const endpointSlot = async (endpointId: number | undefined): Promise<() => void> => {
    if (endpointId === undefined) return () => {}; // a job sent before the limit existed
    const endpoint = perEndpoint.get(endpointId) ?? { count: 0, waiting: [] };
    perEndpoint.set(endpointId, endpoint);
    if (endpoint.count >= settings.perEndpoint) await new Promise<void>((resolve) => endpoint.waiting.push(resolve));
    endpoint.count++;
    return () => {
      endpoint.count--;
      const next = endpoint.waiting.shift();
      if (next) next();
      else if (endpoint.count === 0) perEndpoint.delete(endpointId);
    };
  };

  // The loop sleeps until a slot frees, the relay writes deliveries, or the poll comes round; a wake that
  // comes while it is fetching is kept for its next sleep.
  let wakeSleeper: (() => void) | null = null;
  let wokenMeanwhile = false;
  const wake = () => {
    if (wakeSleeper) wakeSleeper();
    else wokenMeanwhile = true;
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (wokenMeanwhile) {
        wokenMeanwhile = false;
        return resolve();
      }
      const timer = setTimeout(() => wakeSleeper?.(), ms);
      wakeSleeper = () => {
        wakeSleeper = null;
        clearTimeout(timer);
        resolve();
      };
    });
  const inFlight = new Set<Promise<void>>();

  const start = (job: DeliveryJob) => {
    running.set(job.id, job);
    const attempt = endpointSlot(job.data.endpointId)
      .then(async (release) => {
        try {
          await attemptOne(job);
        } finally {
          release();
        }
      })
      .catch((error: unknown) => {
        // A database error around an attempt: pg-boss retries the job with the backoff (or its heartbeat
        // lapses, and the supervisor does).
        log.error({ err: error, job: job.id }, 'a webhook delivery could not be attempted; pg-boss retries it');
        return boss.fail(DELIVER_WEBHOOK, job, { message: String(error) }).then(
          () => {},
          () => {},
        );
      })
      .finally(() => {
        running.delete(job.id);
        inFlight.delete(attempt);
        wake();
      });
    inFlight.add(attempt);
  };

  /**
   * Fetches for the free slots until none is free or nothing more is due. pg-boss hands out no job of an
   * owner who already has their share running, on any worker (the owner is the job's group), so every
   * job fetched is one this process may run.
   */
  const dispatch = async () => {
    while (!stopping.signal.aborted) {
      const free = settings.slots - running.size;
      if (free <= 0) return;
      const jobs = await boss.fetch<DeliveryJobData>(DELIVER_WEBHOOK, {
        batchSize: free,
        groupConcurrency: settings.slotsPerUser,
      });
      for (const job of jobs) start(job);
      if (jobs.length < free) return; // nothing more is due now
    }
  };

  // A job that runs keeps its claim by heartbeat (the queue's heartbeat is 10 s), one statement for all.
  const heartbeatMs = Math.max(1_000, ((await boss.getQueue(DELIVER_WEBHOOK))?.heartbeatSeconds ?? 10) * 500);
  const heartbeat = setInterval(() => {
    if (running.size === 0) return;
    boss.touch(DELIVER_WEBHOOK, [...running.values()]).catch((error: unknown) => {
      log.warn({ err: error }, 'webhook delivery heartbeat failed; the next one retries');
    });
  }, heartbeatMs);

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await dispatch();
      } catch (error) {
        log.warn({ err: error }, 'fetching webhook deliveries failed; the next poll retries');
      }
      await sleep(settings.pollIntervalSeconds * 1000);
      // While attempts run, a slot that frees is refilled together with those that free in the next few
      // milliseconds: one fetch for several, not one per attempt (a fetch counts every user's running jobs).
      if (running.size > 0) await new Promise((resolve) => setTimeout(resolve, REFILL_GATHER_MS));
    }
  })();

  // With no enabled endpoint anywhere, notifications are ignored and the interval alone moves the relay's
  // place (an endpoint registered meanwhile waits at most that long): a drain's NOTIFY per batch would
  // otherwise cost every worker a write to the same row.
  let quiet = false;
  let lookAgain: NodeJS.Timeout | undefined;
  let lookAgainMs = RELAY_DEBOUNCE_MS;
  const relay = coalesce(async () => {
    try {
      for (;;) {
        const { events, deliveries, endpoints, waiting } = await relayEvents(boss);
        quiet = !endpoints;
        if (deliveries > 0) wake();
        if (events > 0 && !stopping.signal.aborted) continue;
        clearTimeout(lookAgain);
        if (waiting && !stopping.signal.aborted) {
          lookAgain = setTimeout(() => void relay(), lookAgainMs);
          lookAgainMs = Math.min(lookAgainMs * 2, RELAY_WAITING_MAX_MS);
        } else lookAgainMs = RELAY_DEBOUNCE_MS;
        break;
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
      stopping.abort();
      clearInterval(timer);
      clearTimeout(nudged);
      wake();
      await relay.idle();
      clearTimeout(lookAgain);
      await loop;
      // The attempts in flight end at once (aborted), each giving its job back.
      await Promise.allSettled([...inFlight]);
      clearInterval(heartbeat);
    },
  };
}
