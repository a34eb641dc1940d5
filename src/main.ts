import type { Server } from 'node:http';
import { ConfigError, loadConfig } from './config.ts';
import { startEmbeddedPostgres } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { createDb } from './db/pool.ts';
import { loadOrCreateDevSecret } from './domain/users/devSecret.ts';
import { createApp } from './http/app.ts';
import { createLogger } from './log.ts';
import { startBoss } from './queue.ts';
import { startWorker } from './worker.ts';

const ROLES = ['all', 'web', 'worker', 'migrate'] as const;
type Role = (typeof ROLES)[number];
const SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * Wires the parts for one role: `all` (npm start: embedded Postgres when DATABASE_URL is unset,
 * migrations, HTTP API and worker), `web`, `worker`, or `migrate` (the release step).
 */
async function main(role: Role): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config).child({ role });
  const cleanups: (() => Promise<unknown>)[] = [];
  let stopping = false;
  const shutdown = async (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'shutting down');
    setTimeout(() => {
      log.error('shutdown took longer than 10 s; exiting anyway');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log.error({ err: error }, 'error while shutting down'));
    }
    log.info('stopped');
    process.exit(exitCode);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(signal, 0));

  try {
    let url = config.DATABASE_URL;
    if (!url) {
      const embedded = await startEmbeddedPostgres({ dataDir: config.DATA_DIR, port: config.EMBEDDED_PG_PORT, log });
      cleanups.push(() => embedded.stop());
      url = await embedded.ensureDatabase('task_manager');
    }
    if (role === 'all' || role === 'migrate') await migrate(url, log);

    const boss = await startBoss({ url, log, role, poolSize: config.DATABASE_POOL_SIZE });
    cleanups.push(() => boss.stop({ graceful: true, timeout: SHUTDOWN_TIMEOUT_MS - 2_000 }));
    if (role === 'migrate') return await shutdown('migrations done', 0);

    const db = await createDb(url, { maximumPoolSize: config.DATABASE_POOL_SIZE });
    cleanups.push(() => db.end());

    if (role === 'all' || role === 'worker') {
      await startWorker(
        boss,
        { pollIntervalSeconds: config.WORKER_POLL_INTERVAL_SECONDS, batchSize: config.WORKER_BATCH_SIZE },
        log,
      );
      log.info('worker started');
    }
    if (role === 'all' || role === 'web') {
      const secret = config.JWT_SECRET ?? (await loadOrCreateDevSecret(config.DATA_DIR));
      const app = createApp({
        db,
        log,
        accounts: { secret, expiresInSeconds: config.JWT_EXPIRES_IN, bcryptCost: config.BCRYPT_COST },
        tasks: { db, boss, delaySeconds: config.TASK_COMPLETION_DELAY_SECONDS },
        rateLimit: { authPerMinute: config.RATE_LIMIT_AUTH_PER_MINUTE, trustProxy: config.TRUST_PROXY },
      });
      const server: Server = await new Promise((resolve, reject) => {
        const listening = app.listen(config.PORT, config.HOST, () => resolve(listening)).once('error', reject);
      });
      // Registered last, so it runs first: stop taking requests and let those in flight finish.
      cleanups.push(
        () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeIdleConnections();
          }),
      );
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : config.PORT;
      log.info({ port }, `listening on http://localhost:${port}`);
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
