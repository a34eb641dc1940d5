/**
 * How late after `due_at` the worker completes tasks, completed by a worker process started as the
 * Procfile starts it, with the default configuration. Two rounds:
 * - paced: BENCH_LATENESS_TASKS (default 500) tasks due 2 s after creation, created evenly over 2 s (each in
 *   its own transaction, as `POST /tasks` creates them);
 * - mixed: as many tasks with random due times 1 to 5 s ahead, created in random order, 16 at a time, and a
 *   fifth of them rescheduled once, to another random time 1 to 5 s ahead, while pending.
 * - burst, in two shapes (the all-in-one process of `npm start`, and a web process with a worker process):
 *   300 tasks due 2 s after creation, created through `POST /tasks` by 30 concurrent clients at a time, a
 *   batch every 0.1 s.
 * The figures are `completed_at - due_at` (database timestamps): p50, p95, p99, max, how many early, and
 * (mixed) how many completed nearer a superseded due time than their last one (of those moved by more than
 * 100 ms: nearer moves cannot be told from lateness).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'slonik';
import { z } from 'zod';
import { loadConfig } from '../src/config.ts';
import { createDb } from '../src/db/pool.ts';
import { createTask, updateTask } from '../src/domain/tasks/tasks.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { PRODUCTION_TIMING } from '../src/timing.ts';
import { benchDatabase } from './database.ts';
import { progress, writeReport } from './report.ts';
import { BENCH_JWT_SECRET, startRole } from './roles.ts';

const config = loadConfig();
const total = Number(process.env.BENCH_LATENESS_TASKS ?? 500);
const delaySeconds = 2;
const { parkBeyondSeconds } = PRODUCTION_TIMING;
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
  creating.push(
    createTask({ db, boss, delaySeconds, parkBeyondSeconds }, actor, { title: `lateness ${i}`, description: '' }),
  );
}
await Promise.all(creating);

const pendingCount = sql.type(z.object({ n: z.number() }))`select count(*)::int n from tasks where status = 'pending'`;
const waitForWorker = async () => {
  progress('waiting for the worker');
  while ((await db.oneFirst(pendingCount)) > 0) await sleep(200);
  progress('');
};
await waitForWorker();

const latenessRow = z.object({ p50: z.number(), p95: z.number(), p99: z.number(), max: z.number(), early: z.number() });
const latenessOf = (titles: string) =>
  db.one(sql.type(latenessRow)`
    select percentile_cont(0.5) within group (order by ms) p50, percentile_cont(0.95) within group (order by ms) p95,
           percentile_cont(0.99) within group (order by ms) p99, max(ms) max, count(*) filter (where ms < 0)::int early
    from (select extract(epoch from completed_at - due_at) * 1000 ms from tasks where title like ${titles}) lateness`);
const stats = await latenessOf('lateness %');

console.log(
  `\nLateness of ${total} tasks due ${delaySeconds} s after creation, created over ${spreadMs / 1000} s, one worker ` +
    `process (poll ${config.WORKER_POLL_INTERVAL_SECONDS} s as the safety net, wake timer): completed_at - due_at ` +
    `p50 ${stats.p50.toFixed(0)} ms, p95 ${stats.p95.toFixed(0)} ms, p99 ${stats.p99.toFixed(0)} ms, ` +
    `max ${stats.max.toFixed(0)} ms, early: ${stats.early}`,
);

// Mixed: random due times in random order, a fifth of them moved once while pending.
const deps = { db, boss, delaySeconds, parkBeyondSeconds };
const randomDue = () => ({ at: new Date(Date.now() + 1_000 + Math.random() * 4_000) });
progress(`creating ${total} tasks due at random within 1 to 5 s, and rescheduling ${total / 5}`);
const ids: number[] = [];
for (let i = 0; i < total; i += 16) {
  const batch = Array.from({ length: Math.min(16, total - i) }, (_, j) =>
    createTask(deps, actor, { title: `mix ${i + j}`, description: '', due: randomDue() }),
  );
  for (const { task } of await Promise.all(batch)) ids.push(task.id);
}
const superseded = new Map<number, string>(); // task id -> the due_at it had before its reschedule
for (const id of ids.filter((_, i) => i % 5 === 0)) {
  try {
    const before = await db.oneFirst(sql.type(z.object({ due_at: z.string() }))`
      select due_at::text from tasks where id = ${id}`);
    await updateTask(deps, actor, id, { due: randomDue() });
    superseded.set(id, before);
  } catch {
    // completed before its turn came (409): not rescheduled
  }
}
await waitForWorker();
const mixed = await latenessOf('mix %');
// A completion on time is at most the lateness goal (50 ms) after its due time, so it can lie nearer a
// superseded due time only when the two are within twice that of each other: such pairs cannot be told
// apart by this test, and are counted on their own.
const TOO_CLOSE_SECONDS = 0.1;
const { atSuperseded, tooClose } = await db.one(sql.type(z.object({ atSuperseded: z.number(), tooClose: z.number() }))`
  select
    count(*) filter (where apart > ${TOO_CLOSE_SECONDS} and nearer_old)::int as "atSuperseded",
    count(*) filter (where apart <= ${TOO_CLOSE_SECONDS})::int as "tooClose"
  from (
    select
      abs(extract(epoch from t.due_at - old.due_at::timestamptz)) as apart,
      abs(extract(epoch from t.completed_at - old.due_at::timestamptz))
        < abs(extract(epoch from t.completed_at - t.due_at)) as nearer_old
    from tasks t
    join unnest(${sql.array([...superseded.keys()], 'int8')}, ${sql.array([...superseded.values()], 'text')})
      as old(id, due_at) on old.id = t.id
  ) pairs`);
console.log(
  `\nLateness of ${total} tasks due at random within 1 to 5 s, created in random order, ${superseded.size} of them ` +
    `rescheduled once: p50 ${mixed.p50.toFixed(0)} ms, p95 ${mixed.p95.toFixed(0)} ms, p99 ${mixed.p99.toFixed(0)} ms, ` +
    `max ${mixed.max.toFixed(0)} ms, early: ${mixed.early}, completed at a superseded time: ${atSuperseded} ` +
    `(${tooClose} rescheduled within ${TOO_CLOSE_SECONDS * 1000} ms of their first due time, too close to tell)`,
);

await worker.stop();

// Burst: batches of 30 concurrent POST /tasks, one batch every 0.1 s, in each shape.
const BURST_TASKS = 300;
const BURST_CLIENTS = 30;
const BURST_EVERY_MS = 100;
const burstToken = `Bearer ${signToken({ id: userId, role: 'user' }, { secret: BENCH_JWT_SECRET, expiresInSeconds: 3600 })}`;
const roleEnv = { TASK_COMPLETION_DELAY_SECONDS: String(delaySeconds) };
async function burst(shape: 'all' | 'web + worker') {
  const roles =
    shape === 'all'
      ? [await startRole('all', database.url, 'listening on', roleEnv)]
      : [
          await startRole('worker', database.url, 'worker started', roleEnv),
          await startRole('web', database.url, 'listening on', roleEnv),
        ];
  const base = `http://127.0.0.1:${roles.at(-1)?.port}`;
  const title = `burst ${shape} `;
  progress(`burst (${shape}): ${BURST_TASKS} tasks, ${BURST_CLIENTS} at a time, a batch every ${BURST_EVERY_MS} ms`);
  const batches: Promise<unknown>[] = [];
  const start = performance.now();
  for (let i = 0; i < BURST_TASKS; i += BURST_CLIENTS) {
    await sleep(Math.max(0, start + (i / BURST_CLIENTS) * BURST_EVERY_MS - performance.now()));
    for (let j = i; j < Math.min(i + BURST_CLIENTS, BURST_TASKS); j++) {
      batches.push(
        fetch(`${base}/tasks`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: burstToken },
          body: JSON.stringify({ title: `${title}${j}` }),
        }).then((reply) => {
          if (reply.status !== 201) throw new Error(`POST /tasks answered ${reply.status}`);
        }),
      );
    }
  }
  await Promise.all(batches);
  await waitForWorker();
  for (const role of roles.reverse()) await role.stop();
  return latenessOf(`${title}%`);
}
const burstAll = await burst('all');
const burstSplit = await burst('web + worker');
for (const [shape, figures] of [
  ['the all-in-one process', burstAll],
  ['a web and a worker process', burstSplit],
] as const) {
  console.log(
    `\nLateness of ${BURST_TASKS} tasks due ${delaySeconds} s after creation, created by ${BURST_CLIENTS} concurrent ` +
      `clients every ${BURST_EVERY_MS} ms through POST /tasks of ${shape}: p50 ${figures.p50.toFixed(0)} ms, ` +
      `p95 ${figures.p95.toFixed(0)} ms, p99 ${figures.p99.toFixed(0)} ms, max ${figures.max.toFixed(0)} ms, early: ${figures.early}`,
  );
}

await writeReport('lateness', {
  tasks: total,
  delaySeconds,
  spreadSeconds: spreadMs / 1000,
  ...stats,
  mixed: { ...mixed, rescheduled: superseded.size, atSupersededTime: atSuperseded, tooCloseToTell: tooClose },
  burst: { tasks: BURST_TASKS, clients: BURST_CLIENTS, everyMs: BURST_EVERY_MS, all: burstAll, split: burstSplit },
});

await boss.stop({ graceful: false });
await db.end();
await database.stop();
