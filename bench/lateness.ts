/**
 * How late after `due_at` the worker completes tasks: BENCH_LATENESS_TASKS (default 500) tasks due 2 s
 * after creation, created evenly over 2 s (each in its own transaction, as `POST /tasks` creates them),
 * completed by a worker process started as the Procfile starts it, with the default configuration. The
 * figures are `completed_at - due_at` (database timestamps): p50, p95, p99, max, and how many early.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'slonik';
import { z } from 'zod';
import { loadConfig } from '../src/config.ts';
import { createDb } from '../src/db/pool.ts';
import { createTask } from '../src/domain/tasks/tasks.ts';
import { startBoss } from '../src/jobs/queue.ts';
import { createLogger } from '../src/log.ts';
import { benchDatabase } from './database.ts';
import { progress, writeReport } from './report.ts';
import { startRole } from './roles.ts';

const config = loadConfig();
const total = Number(process.env.BENCH_LATENESS_TASKS ?? 500);
const delaySeconds = 2;
const spreadMs = 2_000;
const log = createLogger({ LOG_LEVEL: 'warn' });

const database = await benchDatabase('task_manager_bench_lateness', log);
const worker = await startRole('worker', database.url, 'worker started');
// This process writes tasks as a web process does: the API pool, with pg-boss writing through it.
const db = await createDb(database.url, {
  maximumPoolSize: config.DATABASE_POOL_SIZE,
  queryTimeoutMs: config.DATABASE_QUERY_TIMEOUT_SECONDS * 1000,
});
const boss = await startBoss({ url: database.url, log, role: 'web', poolSize: 0, api: db });
const userId = await db.oneFirst(sql.type(z.object({ id: z.bigint().transform(Number) }))`
  insert into users (email, password_hash) values ('lateness@example.com', 'x') returning id`);
const actor = { id: userId, role: 'user' as const };

progress(`creating ${total} tasks over ${spreadMs / 1000} s`);
const started = performance.now();
const creating: Promise<unknown>[] = [];
for (let i = 0; i < total; i++) {
  const at = started + (i * spreadMs) / total;
  await sleep(Math.max(0, at - performance.now()));
  creating.push(createTask({ db, boss, delaySeconds }, actor, { title: `lateness ${i}`, description: '' }));
}
await Promise.all(creating);

progress('waiting for the worker');
const pendingCount = sql.type(z.object({ n: z.number() }))`select count(*)::int n from tasks where status = 'pending'`;
while ((await db.oneFirst(pendingCount)) > 0) await sleep(200);
progress('');

const stats = await db.one(sql.type(
  z.object({ p50: z.number(), p95: z.number(), p99: z.number(), max: z.number(), early: z.number() }),
)`
  select percentile_cont(0.5) within group (order by ms) p50, percentile_cont(0.95) within group (order by ms) p95,
         percentile_cont(0.99) within group (order by ms) p99, max(ms) max, count(*) filter (where ms < 0)::int early
  from (select extract(epoch from completed_at - due_at) * 1000 ms from tasks) lateness`);

console.log(
  `\nLateness of ${total} tasks due ${delaySeconds} s after creation, created over ${spreadMs / 1000} s, one worker ` +
    `process (poll ${config.WORKER_POLL_INTERVAL_SECONDS} s as the safety net, wake timer): completed_at - due_at ` +
    `p50 ${stats.p50.toFixed(0)} ms, p95 ${stats.p95.toFixed(0)} ms, p99 ${stats.p99.toFixed(0)} ms, ` +
    `max ${stats.max.toFixed(0)} ms, early: ${stats.early}`,
);
await writeReport('lateness', { tasks: total, delaySeconds, spreadSeconds: spreadMs / 1000, ...stats });

await worker.stop();
await boss.stop({ graceful: false });
await db.end();
await database.stop();
