/**
 * Drain: BENCH_DRAIN_TASKS (default 10,000) tasks are all due; worker processes, started as the Procfile
 * starts them (`node src/main.ts worker`), complete them: one process, then two. Beside it, pg-boss alone:
 * as many jobs on a queue of their own, worked with an empty handler, the same batch size and pool. The
 * rate runs from the first completion to the last (database timestamps), so start-up is not counted.
 * Rounds interleave (BENCH_ROUNDS, default 2); medians. Then each role's resident memory, idle, and a
 * worker's at its peak during a drain.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { loadConfig } from '../src/config.ts';
import { COMPLETE_TASK } from '../src/db/queues.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { benchDatabase } from './database.ts';
import { median, progress, writeReport } from './report.ts';
import { rssMiB, startRole } from './roles.ts';

const config = loadConfig();
const total = Number(process.env.BENCH_DRAIN_TASKS ?? 10_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const log = createLogger({ LOG_LEVEL: 'warn' });

/**
 * Seconds from seeding until the tasks come due: time for the worker processes to boot first, so that a
 * process still starting (compiling, connecting) never shares the CPU with the drain being measured.
 */
const DUE_IN_SECONDS = 8;

/** A fresh database with `total` pending tasks whose jobs all come due at once, DUE_IN_SECONDS from now. */
async function seededDatabase() {
  const database = await benchDatabase('task_manager_bench_drain', log);
  const client = new pg.Client(database.url);
  await client.connect();
  const user = await client.query<{ id: string }>(
    `insert into users (email, password_hash) values ('drain@example.com', 'x') returning id`,
  );
  const tasks = await client.query<{ id: string; job_id: string; due_at: Date }>(
    `insert into tasks (user_id, title, job_id, due_at)
     select $1, 'drain ' || n, gen_random_uuid(), date_trunc('milliseconds', now() + make_interval(secs => $3))
     from generate_series(1, $2) n returning id, job_id, due_at`,
    [user.rows[0]?.id, total, DUE_IN_SECONDS],
  );
  await client.end();
  const boss = await startBoss({ url: database.url, log, role: 'migrate', poolSize: 2 });
  for (let i = 0; i < tasks.rows.length; i += 1_000) {
    const chunk = tasks.rows.slice(i, i + 1_000);
    await boss.insert(
      COMPLETE_TASK,
      chunk.map((task) => ({ id: task.job_id, data: { taskId: Number(task.id) }, startAfter: task.due_at })),
    );
  }
  await boss.stop({ graceful: false });
  return database;
}

/** Completions per second of `workers` worker processes, and the most memory and connections one held. */
async function drainWithWorkers(workers: number) {
  const database = await seededDatabase();
  const children = await Promise.all(
    Array.from({ length: workers }, () => startRole('worker', database.url, 'worker started')),
  );
  const client = new pg.Client(database.url);
  await client.connect();
  let peakMiB = 0;
  let peakConnections = 0;
  for (;;) {
    for (const { child } of children) peakMiB = Math.max(peakMiB, await rssMiB(child.pid ?? 0));
    const { rows } = await client.query<{ left: number; connections: number }>(
      `select (select count(*)::int from tasks where status = 'pending') as left,
              (select count(*)::int from pg_stat_activity where application_name = 'task-manager-worker') as connections`,
    );
    peakConnections = Math.max(peakConnections, rows[0]?.connections ?? 0);
    if (rows[0]?.left === 0) break;
    await sleep(100);
  }
  const { rows } = await client.query<{ seconds: number }>(
    `select extract(epoch from max(completed_at) - min(completed_at))::float8 as seconds from tasks`,
  );
  await client.end();
  await Promise.all(children.map((child) => child.stop()));
  await database.stop();
  // Per worker process: the connections of all of them, shared out.
  return { perSecond: total / (rows[0]?.seconds || Number.NaN), peakMiB, peakConnections: peakConnections / workers };
}

/** Completions per second of pg-boss alone: an empty handler, the worker's batch size and pool. */
async function drainPgBossAlone() {
  const database = await benchDatabase('task_manager_bench_drain', log);
  const boss = new PgBoss({
    connectionString: database.url,
    schema: 'pgboss',
    max: config.WORKER_POOL_SIZE,
    schedule: false,
  });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue('bench-empty');
  for (let i = 0; i < total; i += 1_000) {
    await boss.insert(
      'bench-empty',
      Array.from({ length: Math.min(1_000, total - i) }, () => ({ data: {} })),
    );
  }
  await boss.work(
    'bench-empty',
    { batchSize: config.WORKER_BATCH_SIZE, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true },
    async () => {},
  );
  const client = new pg.Client(database.url);
  await client.connect();
  for (;;) {
    const { rows } = await client.query<{ done: number }>(
      `select count(*)::int as done from pgboss.job where name = 'bench-empty' and state = 'completed'`,
    );
    if (rows[0]?.done === total) break;
    await sleep(100);
  }
  const { rows } = await client.query<{ seconds: number }>(
    `select extract(epoch from max(completed_on) - min(completed_on))::float8 as seconds
     from pgboss.job where name = 'bench-empty'`,
  );
  await client.end();
  await boss.stop({ graceful: false });
  await database.stop();
  return total / (rows[0]?.seconds || Number.NaN);
}

const one: number[] = [];
const two: number[] = [];
const alone: number[] = [];
const peaks: { peakMiB: number; peakConnections: number }[] = [];
for (let round = 1; round <= rounds; round++) {
  progress(`round ${round}/${rounds}: one worker process`);
  const single = await drainWithWorkers(1);
  one.push(single.perSecond);
  peaks.push(single);
  progress(`round ${round}/${rounds}: pg-boss alone`);
  alone.push(await drainPgBossAlone());
  progress(`round ${round}/${rounds}: two worker processes`);
  two.push((await drainWithWorkers(2)).perSecond);
}

progress('idle footprint of each role');
const idle: Record<string, { rssMiB: number; connections: number }> = {};
{
  const database = await benchDatabase('task_manager_bench_drain', log);
  const client = new pg.Client(database.url);
  await client.connect();
  for (const [role, ready] of [
    ['web', 'listening on'],
    ['worker', 'worker started'],
    ['all', 'listening on'],
  ] as const) {
    const child = await startRole(role, database.url, ready);
    await sleep(2_000);
    const { rows } = await client.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where application_name = $1`,
      [`task-manager-${role}`],
    );
    idle[role] = { rssMiB: await rssMiB(child.child.pid ?? 0), connections: rows[0]?.n ?? 0 };
    await child.stop();
  }
  await client.end();
  await database.stop();
}
progress('');

const figures = {
  tasks: total,
  rounds,
  batchSize: config.WORKER_BATCH_SIZE,
  poolSize: config.WORKER_POOL_SIZE,
  oneWorkerPerSecond: median(one),
  twoWorkersPerSecond: median(two),
  pgBossAlonePerSecond: median(alone),
  idle,
  workerPeak: {
    rssMiB: median(peaks.map((peak) => peak.peakMiB)),
    connections: Math.max(...peaks.map((peak) => peak.peakConnections)),
  },
};
console.log(
  `\nDrain of ${total} due tasks, ${rounds} interleaved rounds, medians (batch ${config.WORKER_BATCH_SIZE}, pool ${config.WORKER_POOL_SIZE}):\n`,
);
console.log('| drain | completions/s | ratio to pg-boss alone |');
console.log('|---|---|---|');
console.log(`| one worker process | ${median(one).toFixed(0)} | ${(median(one) / median(alone)).toFixed(2)} |`);
console.log(`| two worker processes | ${median(two).toFixed(0)} | ${(median(two) / median(alone)).toFixed(2)} |`);
console.log(`| pg-boss alone, empty handler | ${median(alone).toFixed(0)} | 1.00 |`);
console.log(
  `\nIdle: ${Object.entries(idle)
    .map(([role, { rssMiB, connections }]) => `${role} ${rssMiB.toFixed(0)} MiB and ${connections} connections`)
    .join(', ')}; ` +
    `a worker at its peak during the drain ${figures.workerPeak.rssMiB.toFixed(0)} MiB and ${figures.workerPeak.connections} connections.`,
);
await writeReport('drain', figures);
