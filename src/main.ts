import { ConfigError, loadConfig } from './config.ts';
import { withApplicationName } from './db/applicationName.ts';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { createDb } from './db/pool.ts';
import type { Boss } from './db/queues.ts';
import { checkSessionBounds } from './db/sessionBounds.ts';
import { waitForDatabase } from './db/waitForDatabase.ts';
import { destinationSettings } from './delivery/send.ts';
import { loadOrCreateDevSecret } from './domain/users/devSecret.ts';
import { createApp, createMetricsApp } from './http/app.ts';
import { type EventHub, startEventHub } from './http/eventHub.ts';
import { createHttpServer, type HttpServer } from './http/server.ts';
import { checkBossSchema, checkLibraryInternals } from './internals.ts';
import { startBoss } from './jobs/queue.ts';
import { startWorker, type Worker, workerSettings } from './jobs/worker.ts';
import { createLogger } from './log.ts';
import { createMetrics, trackQueueDepth } from './metrics.ts';

const ROLES = ['all', 'web', 'worker', 'migrate'] as const;
type Role = (typeof ROLES)[number];
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** After SIGTERM the server keeps answering this long, with `Connection: close`, before it stops accepting. */
const SHUTDOWN_GRACE_MS = 1_000;

/**
 * Wires the parts for one role: `all` (npm start: embedded Postgres when DATABASE_URL is unset,
 * migrations, HTTP API and worker), `web`, `worker`, or `migrate` (the release step).
 */
async function main(role: Role): Promise<void> {
  const config = loadConfig();
  checkLibraryInternals(); // a library upgrade that moved what this service leans on stops here, named
  // Readable lines for a person at a terminal; JSON lines for platforms and log collectors.
  const pretty = process.stdout.isTTY === true && config.NODE_ENV !== 'production';
  const log = createLogger(config, undefined, pretty).child({ role });
  const parts: {
    http?: HttpServer;
    events?: EventHub;
    worker?: Worker;
    boss?: Boss;
    db?: { end(): Promise<void> };
    embedded?: EmbeddedPostgres;
  } = {};

  let stopping = false;
  const shutdown = async (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'shutting down');
    setTimeout(() => {
      log.error('shutdown took longer than 10 s; exiting anyway');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    // Stop taking work first, finish what is in flight, then close what the work needed.
    const { http, events, worker, boss, db, embedded } = parts;
    const steps: [string, (() => Promise<unknown>) | undefined][] = [
      // Long-polls answer and event streams end at once, rather than hold the shutdown.
      ['events', events && (() => events.close())],
      ['http', http && (() => http.drain(SHUTDOWN_GRACE_MS))],
      ['worker', worker && (() => worker.stop())],
      ['pg-boss', boss && (() => boss.stop({ graceful: true, timeout: SHUTDOWN_TIMEOUT_MS - 3_000 }))],
      ['pool', db && (() => db.end())],
      ['embedded postgres', embedded && (() => embedded.stop())],
    ];
    for (const [name, step] of steps) {
      await step?.().catch((error: unknown) => log.error({ err: error, part: name }, 'error while shutting down'));
    }
    log.info('stopped');
    process.exit(exitCode);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(signal, 0));

  try {
    const serving = role === 'all' || role === 'web';
    if (serving) {
      // Listening before the database is there: /healthz answers, /readyz says 503 until the API is served.
      parts.http = createHttpServer(log);
      const port = await parts.http.listen(config.PORT, config.HOST);
      log.info({ port }, 'accepting connections; starting');
    }

    // Queries go to `url` (perhaps a pooler in transaction mode); what needs a session of its own (LISTEN,
    // migrations, pg-boss's schema) goes to `directUrl`. They are the same unless both are configured.
    let url = config.DATABASE_URL;
    let directUrl = config.DATABASE_DIRECT_URL;
    if (!url || !directUrl) {
      parts.embedded = await startEmbeddedPostgres({
        dataDir: config.DATA_DIR,
        port: config.EMBEDDED_PG_PORT,
        log,
      });
      url = directUrl = await parts.embedded.ensureDatabase('task_manager');
    }
    const installing = role === 'all' || role === 'migrate';
    await waitForDatabase(installing ? directUrl : url, config.DATABASE_WAIT_SECONDS * 1000, log);
    // Each role's connections carry its name, so pg_stat_activity shows who holds what (docs/deploy.md: Connection budget).
    const named = withApplicationName(url, `task-manager-${role}`);
    const namedDirect = withApplicationName(directUrl, `task-manager-${role}`);
    if (installing) await migrate(namedDirect, log);

    // The connection budget: a web process has its API pool only (pg-boss writes jobs through it); a
    // worker has pg-boss's pool only; the release step one connection at a time.
    const queryTimeoutMs = config.DATABASE_QUERY_TIMEOUT_SECONDS * 1000;
    const db = serving
      ? await createDb(named, { maximumPoolSize: config.DATABASE_POOL_SIZE, queryTimeoutMs })
      : undefined;
    if (db) parts.db = db;
    parts.boss = await startBoss({
      url: installing ? directUrl : url,
      log,
      role,
      poolSize: role === 'migrate' ? 1 : config.WORKER_POOL_SIZE,
      queryTimeoutMs,
      ...(role === 'web' && db && { api: db }),
    });
    await checkBossSchema(parts.boss.getDb());
    if (role === 'migrate') return await shutdown('migrations done', 0);
    const boss = parts.boss;
    await checkSessionBounds(async () => {
      const { rows } = await boss.getDb().executeSql('show statement_timeout');
      return String(rows[0]?.statement_timeout);
    }, log);

    const metrics = createMetrics(role);
    trackQueueDepth(metrics, parts.boss);
    if (role === 'all' || role === 'worker') {
      // One more connection of the worker role: the LISTEN of its wake timer (docs/deploy.md: Connection budget).
      const urls = { databaseUrl: named, listenUrl: namedDirect };
      parts.worker = await startWorker(parts.boss, workerSettings(config, urls), log, metrics);
      log.info('worker started');
    }
    if (parts.http && db) {
      const http = parts.http;
      const secret = config.JWT_SECRET ?? (await loadOrCreateDevSecret(config.DATA_DIR));
      // One more connection of the web role: the LISTEN of task events (docs/deploy.md: Connection budget).
      parts.events = await startEventHub({ url: namedDirect, db, log });
      const app = createApp({
        db,
        log,
        accounts: { secret, expiresInSeconds: config.JWT_EXPIRES_IN, bcryptCost: config.BCRYPT_COST },
        tasks: { db, boss: parts.boss, delaySeconds: config.TASK_COMPLETION_DELAY_SECONDS },
        rateLimit: {
          authPerMinute: config.RATE_LIMIT_AUTH_PER_MINUTE,
          loginFailures: config.RATE_LIMIT_LOGIN_FAILURES,
        },
        trustProxyHops: config.TRUST_PROXY,
        requestTimeoutMs: config.REQUEST_TIMEOUT_SECONDS * 1000,
        draining: http.draining,
        metrics,
        metricsToken: config.METRICS_TOKEN,
        events: parts.events,
        watchLimits: { perUser: config.WATCH_LIMIT_PER_USER, perProcess: config.WATCH_LIMIT_PER_PROCESS },
        webhooks: destinationSettings(config),
      });
      http.serve(app);
      const port = (http.server.address() as { port: number }).port;
      log.info({ port }, `listening on http://localhost:${port}`);
    } else if (config.METRICS_PORT !== undefined) {
      // A worker-only process: /metrics and /healthz on a port of their own.
      parts.http = createHttpServer(log);
      parts.http.serve(createMetricsApp({ log, metrics, metricsToken: config.METRICS_TOKEN }));
      const port = await parts.http.listen(config.METRICS_PORT, config.HOST);
      log.info({ port }, `metrics on http://localhost:${port}/metrics`);
    }
  } catch (error) {
    log.fatal({ err: error }, error instanceof Error ? error.message : 'failed to start');
    await shutdown('failed to start', 1);
  }
}

const role = (process.argv[2] ?? 'all') as Role;
if (!ROLES.includes(role)) {
  console.error(`unknown role "${role}": use one of ${ROLES.join(', ')}`);
  process.exit(2);
}
main(role).catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});
