import { ConfigError, loadConfig } from './config.ts';
import { withApplicationName } from './db/applicationName.ts';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './db/embedded.ts';
import { checkBossSchema, checkLibraryInternals } from './db/internals.ts';
import { migrate } from './db/migrate.ts';
import type { Boss } from './db/queues.ts';
import { waitForDatabase } from './db/waitForDatabase.ts';
import { createMetricsApp } from './http/app.ts';
import type { EventHub } from './http/eventHub.ts';
import { createHttpServer, type HttpServer } from './http/server.ts';
import { startBoss } from './jobs/boss.ts';
import type { Worker } from './jobs/worker.ts';
import { createLogger } from './log.ts';
import { startService } from './service.ts';

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

    if (role === 'migrate') {
      // The release step: the migrations above, then pg-boss's schema (and its queues), one connection.
      parts.boss = await startBoss({ url: directUrl, log, role, poolSize: 1 });
      await checkBossSchema(parts.boss.getDb());
      return await shutdown('migrations done', 0);
    }
    const service = await startService(config, {
      role,
      url: named,
      directUrl: namedDirect,
      log,
      ...(parts.http && { draining: parts.http.draining }),
    });
    Object.assign(parts, {
      boss: service.boss,
      ...(service.db && { db: service.db }),
      ...(service.events && { events: service.events }),
      ...(service.worker && { worker: service.worker }),
    });
    if (service.worker) log.info('worker started');
    if (parts.http && service.app) {
      parts.http.serve(service.app);
      const port = (parts.http.server.address() as { port: number }).port;
      log.info({ port }, `listening on http://localhost:${port}`);
    } else if (config.METRICS_PORT !== undefined) {
      // A worker-only process: /metrics and /healthz on a port of their own.
      parts.http = createHttpServer(log);
      parts.http.serve(createMetricsApp({ log, metrics: service.metrics, metricsToken: config.METRICS_TOKEN }));
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
