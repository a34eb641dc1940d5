import type { Config } from '../src/config.ts';
import { createDb } from '../src/db/pool.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { createApp } from '../src/http/app.ts';
import { startEventHub } from '../src/http/eventHub.ts';
import { createHttpServer } from '../src/http/server.ts';
import { startBoss } from '../src/jobs/queue.ts';
import { startWorker, workerSettings } from '../src/jobs/worker.ts';
import type { Logger } from '../src/log.ts';
import { createMetrics } from '../src/metrics.ts';

const SECRET = 'bench-secret-that-is-at-least-32-characters';

/**
 * The service as `npm start` wires it (API pool, events listener, pg-boss with a worker), in this process
 * on an ephemeral port. Rate limits and watch caps are lifted: the benchmark is the only client.
 */
export async function startBenchService(url: string, config: Config, log: Logger, options: { delaySeconds: number }) {
  const queryTimeoutMs = config.DATABASE_QUERY_TIMEOUT_SECONDS * 1000;
  const db = await createDb(url, { maximumPoolSize: config.DATABASE_POOL_SIZE, queryTimeoutMs });
  const metrics = createMetrics('bench');
  const boss = await startBoss({ url, log, role: 'all', poolSize: config.WORKER_POOL_SIZE });
  const worker = await startWorker(boss, workerSettings(config, { databaseUrl: url, listenUrl: url }), log, metrics);
  const events = await startEventHub({ url, db, log });
  const http = createHttpServer(log);
  http.serve(
    createApp({
      db,
      log,
      accounts: { secret: SECRET, expiresInSeconds: 3600, bcryptCost: 4 },
      tasks: { db, boss, delaySeconds: options.delaySeconds },
      rateLimit: { authPerMinute: 1_000_000_000, loginFailures: 1_000_000_000 },
      trustProxyHops: 0,
      requestTimeoutMs: 30_000,
      draining: http.draining,
      metrics,
      events,
      watchLimits: { perUser: 1_000_000, perProcess: 1_000_000 },
      webhooks: { allowPrivateNetworks: true, allowHttp: true },
    }),
  );
  const base = `http://127.0.0.1:${await http.listen(0, '127.0.0.1')}`;
  const registered = await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'password123' }),
  });
  const user = (await registered.json()) as { id: number };
  const token = signToken({ id: user.id, role: 'user' }, { secret: SECRET, expiresInSeconds: 3600 });
  return {
    base,
    db,
    boss,
    userId: user.id,
    authorization: `Bearer ${token}`,
    async stop() {
      await events.close();
      await http.drain(0);
      await worker.stop();
      await boss.stop({ graceful: false });
      await db.end();
    },
  };
}
