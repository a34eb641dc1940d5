import type Koa from 'koa';
import type { DatabasePool } from 'slonik';
import type { Config } from './config.ts';
import { onBossDb } from './db/connection.ts';
import { checkBossSchema } from './db/internals.ts';
import { createDb } from './db/pool.ts';
import type { Boss } from './db/queues.ts';
import { checkSessionBounds } from './db/sessionBounds.ts';
import { destinationSettings } from './delivery/send.ts';
import { loadOrCreateDevSecret } from './domain/users/devSecret.ts';
import { createApp } from './http/app.ts';
import type { AppDeps } from './http/deps.ts';
import { type EventHub, startEventHub } from './http/eventHub.ts';
import { startBoss } from './jobs/boss.ts';
import { startWorker, type Worker, workerSettings } from './jobs/worker.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics, trackQueueDepth } from './metrics.ts';
import { PRODUCTION_TIMING, type Timing } from './timing.ts';

export type ServiceRole = 'all' | 'web' | 'worker';

/** The running parts of one process: a web process has `app` (and what it serves from), a worker `worker`. */
export type Service = {
  readonly boss: Boss;
  readonly metrics: Metrics;
  readonly db?: DatabasePool;
  readonly events?: EventHub;
  readonly deps?: AppDeps;
  readonly app?: Koa;
  readonly worker?: Worker;
};

/**
 * The one place the service is wired: the parts of a `role` process, built from `config`. main.ts, the
 * tests and the benchmarks all start the service through it, so what they run is what production runs.
 * Queries go to `url` (perhaps a pooler in transaction mode); what needs a session of its own (the LISTENs)
 * to `directUrl`. The connection budget (docs/deploy.md): a web process has its API pool (pg-boss writes
 * its jobs through it) and one LISTEN; a worker has pg-boss's pool, the deliveries' pool and one LISTEN.
 * Stop it with `stopService`, or part by part (main.ts drains HTTP in between).
 */
export async function startService(
  config: Config,
  options: {
    role: ServiceRole;
    url: string;
    directUrl: string;
    log: Logger;
    draining?: () => boolean;
    /** The service's own intervals and horizons: production's unless a test shortens them. */
    timing?: Timing;
  },
): Promise<Service> {
  const { role, url, directUrl, log, timing = PRODUCTION_TIMING } = options;
  const serving = role === 'all' || role === 'web';
  const queryTimeoutMs = config.DATABASE_QUERY_TIMEOUT_SECONDS * 1000;
  const db = serving ? await createDb(url, { maximumPoolSize: config.DATABASE_POOL_SIZE, queryTimeoutMs }) : undefined;
  const boss = await startBoss({
    url: role === 'all' ? directUrl : url, // the all-in-one process installs pg-boss's schema: a session
    log,
    role,
    poolSize: config.WORKER_POOL_SIZE,
    queryTimeoutMs,
    timing,
    ...(role === 'web' && db && { api: db }),
  });
  await checkBossSchema(boss.getDb());
  await checkSessionBounds(onBossDb(boss.getDb()), log);
  const metrics = createMetrics(role);
  trackQueueDepth(metrics, boss);
  const worker =
    role === 'web'
      ? undefined
      : await startWorker(
          boss,
          workerSettings(config, { databaseUrl: url, listenUrl: directUrl }, timing),
          log,
          metrics,
        );
  if (!db) return { boss, metrics, ...(worker && { worker }) };

  const events = await startEventHub({ url: directUrl, db, log });
  const secret = config.JWT_SECRET ?? (await loadOrCreateDevSecret(config.DATA_DIR));
  const deps: AppDeps = {
    db,
    log,
    accounts: { secret, expiresInSeconds: config.JWT_EXPIRES_IN, bcryptCost: config.BCRYPT_COST },
    tasks: {
      db,
      boss,
      delaySeconds: config.TASK_COMPLETION_DELAY_SECONDS,
      parkBeyondSeconds: timing.parkBeyondSeconds,
    },
    schedules: {
      db,
      boss,
      parkBeyondSeconds: timing.parkBeyondSeconds,
      minIntervalSeconds: config.SCHEDULE_MIN_INTERVAL_SECONDS,
    },
    rateLimit: { authPerMinute: config.RATE_LIMIT_AUTH_PER_MINUTE, loginFailures: config.RATE_LIMIT_LOGIN_FAILURES },
    trustProxyHops: config.TRUST_PROXY,
    requestTimeoutMs: config.REQUEST_TIMEOUT_SECONDS * 1000,
    draining: options.draining ?? (() => false),
    metrics,
    metricsToken: config.METRICS_TOKEN,
    events,
    watchLimits: { perUser: config.WATCH_LIMIT_PER_USER, perProcess: config.WATCH_LIMIT_PER_PROCESS },
    webhooks: destinationSettings(config),
  };
  return { boss, metrics, db, events, deps, app: createApp(deps), ...(worker && { worker }) };
}

/** Stops every part, in the order that finishes work before closing what it needs. */
export async function stopService(service: Service): Promise<void> {
  if (service.events && !service.events.closed) await service.events.close();
  await service.worker?.stop();
  await service.boss.stop({ graceful: false });
  await service.db?.end();
}
