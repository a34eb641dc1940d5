/**
 * Drain: BENCH_DRAIN_TASKS (default 10,000) tasks are all due; worker processes, started as the Procfile
 * starts them (`node src/main.ts worker`), complete them: one process, then two. Beside it, pg-boss alone:
 * as many jobs on a queue of their own, worked with an empty handler, the same batch size and pool. The
 * rate runs from the first completion to the last (database timestamps), so start-up is not counted.
 * Rounds interleave (BENCH_ROUNDS, default 2); medians. Then each role's resident memory, idle, and a
 * worker's at its peak during a drain.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { loadConfig, projectDir } from '../src/config.ts';
import { COMPLETE_TASK, startBoss } from '../src/jobs/queue.ts';
import { createLogger } from '../src/log.ts';
import { benchDatabase } from './database.ts';

const config = loadConfig();
const total = Number(process.env.BENCH_DRAIN_TASKS ?? 10_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const log = createLogger({ LOG_LEVEL: 'warn' });
const progress = (text: string) => process.stderr.write(`\r\x1b[K${text}`);
const JWT_SECRET = 'bench-secret-that-is-at-least-32-characters';

/** Resident memory of a process, in MiB (Linux). */
async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

/** A role as the Procfile starts it; resolves once it says it is up. */
async function startRole(role: string, url: string, readyMessage: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(projectDir, 'src/main.ts'), role], {
    cwd: projectDir,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DATABASE_URL: url, JWT_SECRET, PORT: '0' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise<void>((resolve, reject) => {
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      if (buffer.includes(readyMessage)) resolve();
      if (buffer.length > 100_000) buffer = buffer.slice(-10_000);
    });
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
  return child;
}

const stop = async (child: ChildProcess) => {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
};

/** A fresh database with `total` pending tasks whose jobs are all due now. */
async function seededDatabase() {
  const database = await benchDatabase('task_manager_bench_drain', log);
  const client = new pg.Client(database.url);
  await client.connect();
  const user = await client.query<{ id: string }>(
    `insert into users (email, password_hash) values ('drain@example.com', 'x') returning id`,
  );
  const tasks = await client.query<{ id: string; job_id: string }>(
    `insert into tasks (user_id, title, job_id, due_at)
     select $1, 'drain ' || n, gen_random_uuid(), now() from generate_series(1, $2) n returning id, job_id`,
    [user.rows[0]?.id, total],
  );
  await client.end();
  const boss = await startBoss({ url: database.url, log, role: 'migrate', poolSize: 2 });
  for (let i = 0; i < tasks.rows.length; i += 1_000) {
    const chunk = tasks.rows.slice(i, i + 1_000);
    await boss.insert(
      COMPLETE_TASK,
      chunk.map((task) => ({ id: task.job_id, data: { taskId: Number(task.id) } })),
    );
  }
  await boss.stop({ graceful: false });
  return database;
}

/** Completions per second of `workers` worker processes, and the highest resident memory one reached. */
async function drainWithWorkers(workers: number) {
  const database = await seededDatabase();
  const children = await Promise.all(
    Array.from({ length: workers }, () => startRole('worker', database.url, 'worker started')),
  );
  const client = new pg.Client(database.url);
  await client.connect();
  let peak = 0;
  for (;;) {
    for (const child of children) peak = Math.max(peak, await rssMiB(child.pid ?? 0));
    const { rows } = await client.query<{ left: number }>(
      `select count(*)::int as left from tasks where status = 'pending'`,
    );
    if (rows[0]?.left === 0) break;
    await sleep(100);
  }
  const { rows } = await client.query<{ seconds: number }>(
    `select extract(epoch from max(completed_at) - min(completed_at))::float8 as seconds from tasks`,
  );
  await client.end();
  await Promise.all(children.map(stop));
  await database.stop();
  return { perSecond: total / (rows[0]?.seconds || Number.NaN), peakMiB: peak };
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

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
const one: number[] = [];
const two: number[] = [];
const alone: number[] = [];
const peaks: number[] = [];
for (let round = 1; round <= rounds; round++) {
  progress(`round ${round}/${rounds}: one worker process`);
  const single = await drainWithWorkers(1);
  one.push(single.perSecond);
  peaks.push(single.peakMiB);
  progress(`round ${round}/${rounds}: pg-boss alone`);
  alone.push(await drainPgBossAlone());
  progress(`round ${round}/${rounds}: two worker processes`);
  two.push((await drainWithWorkers(2)).perSecond);
}

progress('idle memory of each role');
const idle: Record<string, number> = {};
{
  const database = await benchDatabase('task_manager_bench_drain', log);
  for (const [role, ready] of [
    ['web', 'listening on'],
    ['worker', 'worker started'],
    ['all', 'listening on'],
  ] as const) {
    const child = await startRole(role, database.url, ready);
    await sleep(2_000);
    idle[role] = await rssMiB(child.pid ?? 0);
    await stop(child);
  }
  await database.stop();
}
progress('');

console.log(
  `\nDrain of ${total} due tasks, ${rounds} interleaved rounds, medians (batch ${config.WORKER_BATCH_SIZE}, pool ${config.WORKER_POOL_SIZE}):\n`,
);
console.log('| drain | completions/s | ratio to pg-boss alone |');
console.log('|---|---|---|');
console.log(`| one worker process | ${median(one).toFixed(0)} | ${(median(one) / median(alone)).toFixed(2)} |`);
console.log(`| two worker processes | ${median(two).toFixed(0)} | ${(median(two) / median(alone)).toFixed(2)} |`);
console.log(`| pg-boss alone, empty handler | ${median(alone).toFixed(0)} | 1.00 |`);
console.log(
  `\nResident memory: web ${idle.web?.toFixed(0)} MiB, worker ${idle.worker?.toFixed(0)} MiB, all-in-one ${idle.all?.toFixed(0)} MiB idle; ` +
    `a worker at its peak during the drain ${median(peaks).toFixed(0)} MiB.`,
);
