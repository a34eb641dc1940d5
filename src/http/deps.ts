import type { DatabasePool } from 'slonik';
import type { DestinationSettings } from '../delivery/send.ts';
import type { ScheduleDeps } from '../domain/schedules/schedules.ts';
import type { TaskDeps } from '../domain/tasks/tasks.ts';
import type { AccountSettings } from '../domain/users/accounts.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { EventHub } from './eventHub.ts';
import type { RateLimitSettings } from './rateLimit.ts';

/** What the HTTP API needs, handed to `createApp` and to each router. */
export type AppDeps = {
  readonly db: DatabasePool;
  readonly log: Logger;
  readonly accounts: AccountSettings;
  readonly tasks: TaskDeps;
  readonly schedules: ScheduleDeps;
  readonly rateLimit: RateLimitSettings;
  /** How many proxies in front append to X-Forwarded-For; 0 takes the socket's address. */
  readonly trustProxyHops: number;
  /** A request that takes longer (a database that does not answer) gets a 503. */
  readonly requestTimeoutMs: number;
  /** True once shutdown began: /readyz answers 503 and every response closes its connection. */
  readonly draining: () => boolean;
  readonly metrics: Metrics;
  /** Task events from the database, for `Prefer: wait` and GET /tasks/events. */
  readonly events: EventHub;
  /** Open waits and event streams allowed per user and per process; beyond: 429. */
  readonly watchLimits: { readonly perUser: number; readonly perProcess: number };
  /** Where webhook endpoints may point (checked at registration, and again at every attempt). */
  readonly webhooks: DestinationSettings;
  /** When set, GET /metrics wants it as a bearer token. */
  readonly metricsToken?: string | undefined;
};
