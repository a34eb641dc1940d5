/**
 * How late schedules' occurrences complete, with a worker process started as the Procfile starts it:
 * - every 2 s: 50 schedules of `*\/2 * * * * *` for a minute; lateness (completed_at - due_at) of every
 *   occurrence, none early;
 * - the top of the minute: 100, 1,000 and 10,000 schedules of `* * * * *` firing at once (resumed together
 *   within one minute, so all their occurrences are due at the next); for that minute's occurrences:
 *   lateness p50 / p99 / max, how long after the minute every next occurrence exists, the worker's CPU and
 *   Postgres's CPU over it, and none early, none twice, none lost. A burst this size completes at the drain
 *   rate: its p99 is held to its count over the last measured drain (bench/drain.ts), plus 100 ms.
 * The schedules are written by this process as a web process writes them (the API pool, pg-boss through it).
 */
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'slonik';
import { z } from 'zod';
import { loadConfig } from '../src/config.ts';
import { createDb } from '../src/db/pool.ts';
import { createSchedule, updateSchedule } from '../src/domain/schedules/schedules.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { PRODUCTION_TIMING } from '../src/timing.ts';
import { benchDatabase } from './database.ts';
import { progress, readReport, writeReport } from './report.ts';
import { cpuMs, startRole } from './roles.ts';

const config = loadConfig();
const log = createLogger({ LOG_LEVEL: 'warn' });
const SIZES = (process.env.BENCH_SCHEDULE_SIZES ?? '100,1000,10000').split(',').map(Number);

/** Runs `work` over `items`, `concurrency` at a time. */
async function inParallel<T>(items: T[], concurrency: number, work: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

/** CPU milliseconds of the Postgres processes of the benchmarks' embedded cluster (none on another server). */
async function postgresCpuMs(): Promise<number> {
  let total = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const command = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (command.startsWith('postgres') && (cmdline.includes('.data/bench') || cmdline.startsWith('postgres:'))) {
      total += await cpuMs(Number(entry)).catch(() => 0);
    }
  }
  return total;
}

async function setUp(name: string) {
  const database = await benchDatabase(name, log);
  const worker = await startRole('worker', database.url, 'worker started');
  const db = await createDb(database.url, {
    maximumPoolSize: config.DATABASE_POOL_SIZE,
    queryTimeoutMs: config.DATABASE_QUERY_TIMEOUT_SECONDS * 1000,
  });
  const boss = await startBoss({ url: database.url, log, role: 'web', poolSize: 0, api: db });
  // A user per 100 schedules (the most one user may have).
  const users = new Map<number, { id: number; role: 'user' }>();
  const actorFor = async (i: number) => {
    const index = Math.floor(i / 100);
    let actor = users.get(index);
    if (!actor) {
      const id = await db.oneFirst(sql.type(z.object({ id: z.bigint().transform(Number) }))`
        insert into users (email, password_hash) values (${`schedules-${index}@example.com`}, 'x') returning id`);
      actor = { id, role: 'user' };
      users.set(index, actor);
    }
    return actor;
  };
  for (let i = 0; i < 10_000; i += 100) await actorFor(i); // made up front, in order
  const deps = { db, boss, parkBeyondSeconds: PRODUCTION_TIMING.parkBeyondSeconds, minIntervalSeconds: 1 };
  return {
    db,
    deps,
    worker,
    actorFor,
    async stop() {
      await worker.stop();
      await boss.stop({ graceful: false });
      await db.end();
      await database.stop();
    },
  };
}

const latenessRow = z.object({
  occurrences: z.number(),
  p50: z.number().nullable(),
  p99: z.number().nullable(),
  max: z.number().nullable(),
  early: z.number(),
});
const latenessOf = (db: Awaited<ReturnType<typeof setUp>>['db'], where: ReturnType<typeof sql.fragment>) =>
  db.one(sql.type(latenessRow)`
    select count(*)::int occurrences,
           percentile_cont(0.5) within group (order by ms) p50, percentile_cont(0.99) within group (order by ms) p99,
           max(ms)::float8 max, count(*) filter (where ms < 0)::int early
    from (select extract(epoch from completed_at - due_at)::float8 * 1000 ms from tasks
          where status = 'completed' and ${where}) lateness`);

// Every 2 s, for a minute.
const every = await setUp('task_manager_bench_schedules_every');
progress('50 schedules firing every 2 s, for a minute');
await inParallel(
  Array.from({ length: 50 }, (_, i) => i),
  8,
  async (i) =>
    createSchedule(every.deps, await every.actorFor(i), {
      title: `every 2 s ${i}`,
      description: '',
      cron: '*/2 * * * * *',
      timeZone: 'UTC',
      paused: false,
    }),
);
const everyStarted = new Date();
await sleep(60_000);
const everyFigures = await latenessOf(
  every.db,
  sql.fragment`schedule_id is not null and due_at >= ${everyStarted.toISOString()}::timestamptz`,
);
await every.stop();
progress('');
console.log(
  `\n50 schedules every 2 s for a minute: ${everyFigures.occurrences} occurrences, lateness p50 ${everyFigures.p50?.toFixed(0)} ms, ` +
    `p99 ${everyFigures.p99?.toFixed(0)} ms, max ${everyFigures.max?.toFixed(0)} ms, early: ${everyFigures.early}`,
);

// The top of the minute.
const drainPerSecond = await readReport<{ oneWorkerPerSecond: number }>('drain')
  .then((drain) => drain.oneWorkerPerSecond)
  .catch(() => null);
const topOfMinute = [];
for (const size of SIZES) {
  const run = await setUp(`task_manager_bench_schedules_${size}`);
  progress(`${size} schedules of * * * * *: creating them paused`);
  const ids: number[] = [];
  const owners = new Map<number, { id: number; role: 'user' }>();
  await inParallel(
    Array.from({ length: size }, (_, i) => i),
    16,
    async (i) => {
      const actor = await run.actorFor(i);
      const { schedule } = await createSchedule(run.deps, actor, {
        title: `minute ${i}`,
        description: '',
        cron: '* * * * *',
        timeZone: 'UTC',
        paused: true,
      });
      ids.push(schedule.id);
      owners.set(schedule.id, actor);
    },
  );
  // Resumed together just after a minute begins: every first occurrence is due at the next minute.
  await sleep(60_000 - (Date.now() % 60_000) + 200);
  progress(`${size} schedules of * * * * *: resuming them for the next minute`);
  await inParallel(ids, 16, (id) =>
    updateSchedule(run.deps, owners.get(id) ?? { id: 0, role: 'user' }, id, { paused: false }),
  );
  const minute = Math.ceil(Date.now() / 60_000) * 60_000;
  const resumedBefore = await run.db.oneFirst(sql.type(z.object({ n: z.number() }))`
    select count(*)::int n from tasks where status = 'pending' and due_at = ${new Date(minute).toISOString()}::timestamptz`);
  if (resumedBefore !== size) throw new Error(`only ${resumedBefore} of ${size} occurrences are due at the minute`);
  progress(`${size} schedules of * * * * *: waiting for the minute`);
  await sleep(Math.max(0, minute - Date.now() - 500));
  const workerCpuBefore = await cpuMs(run.worker.child.pid ?? 0);
  const postgresBefore = await postgresCpuMs();
  // Until every occurrence of the minute has completed and every next one exists.
  const nextMinute = new Date(minute + 60_000).toISOString();
  for (;;) {
    const done = await run.db.oneFirst(sql.type(z.object({ n: z.number() }))`
      select count(*)::int n from tasks where due_at = ${nextMinute}::timestamptz and status = 'pending'`);
    if (done === size || Date.now() > minute + 55_000) break;
    await sleep(50);
  }
  const workerCpu = (await cpuMs(run.worker.child.pid ?? 0)) - workerCpuBefore;
  const postgresCpu = (await postgresCpuMs()) - postgresBefore;
  const lateness = await latenessOf(run.db, sql.fragment`due_at = ${new Date(minute).toISOString()}::timestamptz`);
  const checks = await run.db.one(sql.type(
    z.object({ allNextMs: z.number().nullable(), twice: z.number(), pending: z.number(), schedules: z.number() }),
  )`
    select (select extract(epoch from max(created_at) - ${new Date(minute).toISOString()}::timestamptz)::float8 * 1000
            from tasks where due_at = ${nextMinute}::timestamptz) as "allNextMs",
           (select count(*)::int from (select schedule_id, due_at from tasks where schedule_id is not null
              group by schedule_id, due_at having count(*) > 1) doubled) as twice,
           (select count(*)::int from tasks where status = 'pending' and schedule_id is not null) as pending,
           (select count(*)::int from schedules where not paused) as schedules`);
  const lost = size - lateness.occurrences + Math.abs(checks.pending - checks.schedules);
  const bound = drainPerSecond ? (size / drainPerSecond) * 1000 + 100 : null;
  topOfMinute.push({
    size,
    ...lateness,
    ...checks,
    lost,
    workerCpuMs: workerCpu,
    postgresCpuMs: postgresCpu,
    p99BoundMs: bound,
  });
  await run.stop();
  progress('');
  console.log(
    `\n${size} schedules of * * * * * at the top of the minute: lateness p50 ${lateness.p50?.toFixed(0)} ms, p99 ${lateness.p99?.toFixed(0)} ms, ` +
      `max ${lateness.max?.toFixed(0)} ms (bound ${bound === null ? 'unknown: run `npm run bench -- drain`' : `${bound.toFixed(0)} ms`}); ` +
      `every next occurrence existed ${checks.allNextMs?.toFixed(0)} ms after the minute; worker CPU ${workerCpu} ms, Postgres CPU ${postgresCpu} ms; ` +
      `early ${lateness.early}, twice ${checks.twice}, lost ${lost}`,
  );
}

await writeReport('schedules', { every: everyFigures, topOfMinute, drainPerSecond, at: new Date().toISOString() });
