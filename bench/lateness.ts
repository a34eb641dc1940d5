/**
 * `npm run bench`: how fast tasks are created (task row + pg-boss job in one transaction) and how late
 * the worker completes them, over a burst of tasks that all come due within a second or two.
 * Runs on the embedded Postgres (its own data folder), or on BENCH_DATABASE_URL's server.
 * BENCH_TASKS (default 2000), BENCH_CONCURRENCY (default 20) and the worker's usual variables apply.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'slonik';
import { z } from 'zod';
import { loadConfig } from '../src/config.ts';
import { createDb } from '../src/db/pool.ts';
import { createTask } from '../src/domain/tasks/tasks.ts';
import { startBoss } from '../src/jobs/queue.ts';
import { startWorker, workerSettings } from '../src/jobs/worker.ts';
import { createLogger } from '../src/log.ts';
import { createMetrics } from '../src/metrics.ts';
import { benchDatabase } from './database.ts';

const config = loadConfig();
const total = Number(process.env.BENCH_TASKS ?? 2000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 20);
const delaySeconds = 2;
const log = createLogger({ LOG_LEVEL: 'warn' });

const database = await benchDatabase('task_manager_bench', log);
const url = database.url;
const embedded = !process.env.BENCH_DATABASE_URL;

const boss = await startBoss({ url, log, role: 'all', poolSize: config.WORKER_POOL_SIZE });
const db = await createDb(url, {
  maximumPoolSize: config.DATABASE_POOL_SIZE,
  queryTimeoutMs: config.DATABASE_QUERY_TIMEOUT_SECONDS * 1000,
});
const userId = await db.oneFirst(sql.type(z.object({ id: z.bigint().transform(Number) }))`
  insert into users (email, password_hash) values ('bench@example.com', 'x') returning id`);
const actor = { id: userId, role: 'user' as const };

const worker = await startWorker(boss, workerSettings(config, database.url), log, createMetrics('bench'));
const rssBefore = process.memoryUsage().rss;
const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      await createTask({ db, boss, delaySeconds }, actor, { title: `bench ${next}`, description: '' });
    }
  }),
);
const createSeconds = (performance.now() - started) / 1000;

const pendingCount = sql.type(z.object({ n: z.number() }))`select count(*)::int n from tasks where status = 'pending'`;
while ((await db.oneFirst(pendingCount)) > 0) await sleep(200);

const stats = await db.one(sql.type(
  z.object({ p50: z.number(), p95: z.number(), p99: z.number(), max: z.number(), early: z.number() }),
)`
  select percentile_cont(0.5) within group (order by ms) p50, percentile_cont(0.95) within group (order by ms) p95,
         percentile_cont(0.99) within group (order by ms) p99, max(ms) max, count(*) filter (where ms < 0)::int early
  from (select extract(epoch from completed_at - due_at) * 1000 ms from tasks) lateness`);

console.log(`tasks: ${total}, creation concurrency: ${concurrency}, PostgreSQL: ${embedded ? 'embedded' : 'external'}`);
console.log(`create (task + job, one transaction each): ${(total / createSeconds).toFixed(0)} tasks/s`);
console.log(
  `completion lateness after due_at (poll ${config.WORKER_POLL_INTERVAL_SECONDS} s, batch ${config.WORKER_BATCH_SIZE}): ` +
    `p50 ${stats.p50.toFixed(0)} ms, p95 ${stats.p95.toFixed(0)} ms, p99 ${stats.p99.toFixed(0)} ms, max ${stats.max.toFixed(0)} ms, ` +
    `completed early: ${stats.early}`,
);
console.log(`rss growth over the run: ${((process.memoryUsage().rss - rssBefore) / 2 ** 20).toFixed(1)} MiB`);

await worker.stop();
await boss.stop({ graceful: false });
await db.end();
await database.stop();
