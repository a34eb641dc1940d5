/**
 * How soon a long-poll (`GET /tasks/:id` with `Prefer: wait=30`) answers after its task's completion
 * commits: BENCH_WATCH_TASKS (default 200) tasks due 2 s after creation, created over 2 s, each watched
 * by one long-poll from the moment it exists. The figure is the answer's arrival minus `completed_at`.
 * The whole service runs in this process (HTTP API, worker, events listener), on the embedded Postgres
 * or BENCH_DATABASE_URL's server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config.ts';
import { createDb } from '../src/db/pool.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { createApp } from '../src/http/app.ts';
import { startEventHub } from '../src/http/eventHub.ts';
import { createHttpServer } from '../src/http/server.ts';
import { startBoss } from '../src/jobs/queue.ts';
import { startWorker, workerSettings } from '../src/jobs/worker.ts';
import { createLogger } from '../src/log.ts';
import { createMetrics } from '../src/metrics.ts';
import { benchDatabase } from './database.ts';

const config = loadConfig();
const total = Number(process.env.BENCH_WATCH_TASKS ?? 200);
const log = createLogger({ LOG_LEVEL: 'warn' });
const database = await benchDatabase('task_manager_bench_watch', log);
const queryTimeoutMs = config.DATABASE_QUERY_TIMEOUT_SECONDS * 1000;
const db = await createDb(database.url, { maximumPoolSize: config.DATABASE_POOL_SIZE, queryTimeoutMs });
const boss = await startBoss({ url: database.url, log, role: 'all', poolSize: config.WORKER_POOL_SIZE });
const metrics = createMetrics('bench');
const worker = await startWorker(boss, workerSettings(config, database.url), log, metrics);
const events = await startEventHub({ url: database.url, db, log });
const secret = 'bench-secret-that-is-at-least-32-characters';
const http = createHttpServer(log);
http.serve(
  createApp({
    db,
    log,
    accounts: { secret, expiresInSeconds: 3600, bcryptCost: 4 },
    tasks: { db, boss, delaySeconds: 2 },
    rateLimit: { authPerMinute: 1_000_000, loginFailures: 1_000_000 },
    trustProxyHops: 0,
    requestTimeoutMs: 5_000,
    draining: http.draining,
    metrics,
    events,
    watchLimits: { perUser: total + 10, perProcess: total + 10 },
  }),
);
const base = `http://127.0.0.1:${await http.listen(0, '127.0.0.1')}`;
const register = await fetch(`${base}/register`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ email: 'bench@example.com', password: 'password123' }),
});
const user = (await register.json()) as { id: number };
const auth = {
  authorization: `Bearer ${signToken({ id: user.id, role: 'user' }, { secret, expiresInSeconds: 3600 })}`,
};

const afterCommitMs: number[] = [];
const watches: Promise<void>[] = [];
for (let i = 0; i < total; i++) {
  const created = await fetch(`${base}/tasks`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ title: `watched ${i}` }),
  });
  const task = (await created.json()) as { id: number };
  watches.push(
    fetch(`${base}/tasks/${task.id}`, { headers: { ...auth, prefer: 'wait=30' } }).then(async (response) => {
      const arrived = Date.now();
      const body = (await response.json()) as { status: string; completed_at: string };
      if (body.status !== 'completed') throw new Error(`task ${task.id} answered ${body.status}`);
      afterCommitMs.push(arrived - Date.parse(body.completed_at));
    }),
  );
  await sleep(2_000 / total);
}
await Promise.all(watches);

const sorted = [...afterCommitMs].sort((a, b) => a - b);
const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
console.log(`long-polls: ${total}, PostgreSQL: ${process.env.BENCH_DATABASE_URL ? 'external' : 'embedded'}`);
console.log(
  `answer after the completion's commit (arrival - completed_at): p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, ` +
    `p99 ${at(0.99)} ms, max ${sorted.at(-1)} ms, before completed_at: ${sorted.filter((ms) => ms < 0).length}`,
);

await events.close();
await http.drain(0);
await worker.stop();
await boss.stop({ graceful: false });
await db.end();
await database.stop();
