/**
 * Time is configuration: the intervals, backoffs, horizons and timeouts of the service's own rules, each
 * with its production default. (The few that are an operator's to tune come from the environment instead:
 * config.ts's poll and reconciliation intervals and WEBHOOK_DISABLE_AFTER.) Production runs with
 * `PRODUCTION_TIMING`; the tests shorten them (test/helpers/service.ts) so that they wait on facts in
 * seconds, and test/timing.test.ts checks each default where it takes effect.
 */

/** pg-boss's retries of a failed job: `delaySeconds` after the first failure, doubling (with jitter) up to `maxDelaySeconds`. */
export type RetryPolicy = { readonly limit: number; readonly delaySeconds: number; readonly maxDelaySeconds: number };

export type Timing = {
  /** A worker that stops heartbeating (killed, frozen) loses its jobs after this; pg-boss allows 10 s at least. */
  readonly heartbeatSeconds: number;
  /** How often pg-boss's supervisor looks for expired and stale jobs: with the heartbeat, a crash costs about 15 s. */
  readonly superviseSeconds: number;
  /** A completion that fails (a database hiccup) is retried: 1 s, 2 s, 4 s ... at most a minute apart. */
  readonly completionRetry: RetryPolicy;
  /**
   * A failed webhook attempt is retried: 1.1 to 2 hours of doubling up to the hour, then 23 hourly tries, so
   * a delivery is tried for 24.1 to 25.1 hours before it fails (the contract: at least 24 hours).
   */
  readonly webhookRetry: RetryPolicy;
  /** One webhook attempt, from connecting to the last byte read (the contract: a 2xx within 10 s). */
  readonly webhookAttemptTimeoutMs: number;
  /** Completion jobs due further ahead than this wait parked (src/db/parking.ts). */
  readonly parkBeyondSeconds: number;
  /** How often a worker unparks the jobs coming due within the horizon. */
  readonly unparkIntervalSeconds: number;
  /** However far off the next job is, the wake timer looks again at least this often. */
  readonly wakeMaxSleepMs: number;
  /** The webhook relay's safety-net poll; every task event's NOTIFY wakes it sooner. */
  readonly relayIntervalMs: number;
};

export const PRODUCTION_TIMING: Timing = Object.freeze({
  heartbeatSeconds: 10,
  superviseSeconds: 5,
  completionRetry: Object.freeze({ limit: 20, delaySeconds: 1, maxDelaySeconds: 60 }),
  webhookRetry: Object.freeze({ limit: 36, delaySeconds: 1, maxDelaySeconds: 3600 }),
  webhookAttemptTimeoutMs: 10_000,
  parkBeyondSeconds: 600,
  unparkIntervalSeconds: 60,
  wakeMaxSleepMs: 60_000,
  relayIntervalMs: 1_000,
});
