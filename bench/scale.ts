/**
 * How cost grows with the data (`npm run bench -- scale`). The database grows to each size of
 * BENCH_SCALE_SIZES (default 10 thousand, 1 million, 10 million tasks): tasks of 10,000 users, 95 %
 * completed, created over the last 100 days (so a week holds 7 % of them), the pg-boss job rows such
 * traffic leaves (the pending tasks' jobs, parked when due beyond the horizon as the service sends them,
 * and the completed jobs of the last 7 days, which pg-boss keeps that long), and the task events of the last 24 hours; all by set-based SQL. At each size, with a web
 * and a worker process started as the Procfile starts them:
 * - create and list at concurrency 16 (autocannon, BENCH_ROUNDS rounds of BENCH_SECONDS, medians; the
 *   list user has 1,000 tasks at every size, so each page costs the same work);
 * - lateness: 500 tasks due 2 s after creation, created over 2 s as bench/lateness.ts's paced round does;
 * - a drain of 10,000 tasks due at once: completions per second;
 * - on-disk size per million tasks (tables and indexes apart) and the time the seed took.
 * Before the sizes, on the still small database, the retention soak (see `soak`; BENCH_SOAK=false skips it).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { createDb } from '../src/db/pool.ts';
import { COMPLETE_TASK } from '../src/db/queues.ts';
import { createTask } from '../src/domain/tasks/tasks.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { PRODUCTION_TIMING } from '../src/timing.ts';
import { benchDatabase } from './database.ts';
import { median, progress, writeReport } from './report.ts';
import { BENCH_JWT_SECRET, startRole } from './roles.ts';

const sizes = (process.env.BENCH_SCALE_SIZES ?? '10000,1000000,10000000').split(',').map(Number);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const USERS = 10_000;
const log = createLogger({ LOG_LEVEL: 'warn' });

const database = await benchDatabase('task_manager_bench_scale', log);
const admin = new pg.Client(database.url);
await admin.connect();
// Seeding and measuring statements run long: past the role's 30 s bound, which the service keeps.
await admin.query(`set statement_timeout = 0; set maintenance_work_mem = '256MB'`);
const one = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) =>
  (await admin.query<R>(text, values)).rows[0] as R;

await admin.query(
  `insert into users (email, password_hash) select 'u' || g || '@example.com', 'x' from generate_series(1, $1) g`,
  [USERS],
);
const lister = await one<{ id: string }>(
  `insert into users (email, password_hash) values ('lister@example.com', 'x') returning id`,
);
const creator = await one<{ id: string }>(
  `insert into users (email, password_hash) values ('creator@example.com', 'x') returning id`,
);
const bearer = (id: string) =>
  `Bearer ${signToken({ id: Number(id), role: 'user' }, { secret: BENCH_JWT_SECRET, expiresInSeconds: 7200 })}`;
// pg-boss's queue settings, copied into the seeded job rows as pg-boss itself would.
const queue = await one<Record<string, unknown>>(`select * from pgboss.queue where name = $1`, [COMPLETE_TASK]);

/** Adds `count` tasks, with their jobs and the last day's events (the caller drops and rebuilds the indexes). */
async function grow(count: number) {
  const before = Number((await one<{ id: string }>('select coalesce(max(id), 0) as id from tasks')).id);
  await admin.query(
    `insert into tasks (user_id, title, status, due_at, completed_at, created_at, updated_at, job_id)
     select u, 'seeded',
       case when g % 20 = 0 then 'pending' else 'completed' end,
       date_trunc('milliseconds', case when g % 20 = 0 then now() + interval '1 day' * (g % 30 + 1) else c + interval '2 minutes' end),
       case when g % 20 = 0 then null else c + interval '2 minutes' end,
       c, c, gen_random_uuid()
     from generate_series(1, $1::int) g,
       lateral (select 1 + g % ${USERS} as u, now() - interval '100 days' * random() as c) r`,
    [count],
  );
  const from = before + 1;
  const to = before + count;
  // Jobs: pending tasks wait in `created`; completed ones of the last 7 days are still kept by pg-boss.
  await admin.query(
    `insert into pgboss.job (id, name, data, state, start_after, created_on, started_on, completed_on, keep_until,
       retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds, deletion_seconds, heartbeat_seconds,
       blocked)
     select t.job_id, $3, jsonb_build_object('taskId', t.id),
       case when t.status = 'pending' then 'created' else 'completed' end::pgboss.job_state,
       t.due_at, t.created_at, t.completed_at, t.completed_at, t.due_at + make_interval(secs => $4),
       $5, $6, $7, $8, $9, $10, $11,
       t.status = 'pending' and t.due_at > now() + make_interval(secs => $12) -- parked, as the service sends it
     from tasks t
     where t.id between $1 and $2 and (t.status = 'pending' or t.completed_at > now() - interval '7 days')`,
    [
      from,
      to,
      COMPLETE_TASK,
      queue.retention_seconds,
      queue.retry_limit,
      queue.retry_delay,
      queue.retry_backoff,
      queue.retry_delay_max,
      queue.expire_seconds,
      queue.deletion_seconds,
      queue.heartbeat_seconds,
      PRODUCTION_TIMING.parkBeyondSeconds,
    ],
  );
  await admin.query(
    `insert into task_events (user_id, task_id, type, at)
     select user_id, id, 'created', created_at from tasks where id between $1 and $2 and created_at > now() - interval '1 day'
     union all
     select user_id, id, 'completed', completed_at from tasks
     where id between $1 and $2 and completed_at > now() - interval '1 day'`,
    [from, to],
  );
}

const sizeOf = (table: string) =>
  one<{ table: string; indexes: string }>(
    `select pg_table_size($1::regclass) as table, pg_indexes_size($1::regclass) as indexes`,
    [table],
  );
const mib = (bytes: number | string) => Number(bytes) / 1024 / 1024;
const count = async (text: string) => Number((await one<{ n: string }>(text)).n);

async function load(base: string, method: 'POST' | 'GET', authorization: string) {
  const result = await autocannon({
    url: method === 'POST' ? `${base}/tasks` : `${base}/tasks?limit=20`,
    method,
    connections: 16,
    duration: seconds,
    headers: { authorization, 'content-type': 'application/json' },
    ...(method === 'POST' && { body: JSON.stringify({ title: 'bench' }) }),
  });
  if (result.non2xx + result.errors > 0) throw new Error(`${method} /tasks: ${result.non2xx} non-2xx`);
  return result.requests.average;
}

/** As bench/lateness.ts's paced round: 500 tasks due 2 s after creation, created over 2 s as POST /tasks creates them. */
async function lateness() {
  const db = await createDb(database.url, { maximumPoolSize: 6, queryTimeoutMs: 15_000 });
  const boss = await startBoss({ url: database.url, log, role: 'web', poolSize: 0, api: db });
  const actor = { id: Number(creator.id), role: 'user' as const };
  const started = performance.now();
  const creating: Promise<unknown>[] = [];
  for (let i = 0; i < 500; i++) {
    await sleep(Math.max(0, started + i * 4 - performance.now()));
    creating.push(
      createTask({ db, boss, delaySeconds: 2, parkBeyondSeconds: PRODUCTION_TIMING.parkBeyondSeconds }, actor, {
        title: 'lateness',
        description: '',
      }),
    );
  }
  await Promise.all(creating);
  await boss.stop({ graceful: false });
  await db.end();
  while ((await count(`select count(*) n from tasks where title = 'lateness' and status = 'pending'`)) > 0) {
    await sleep(200);
  }
  const figures = await one<{ p50: number; p99: number; max: number }>(
    `select percentile_cont(0.5) within group (order by ms) p50, percentile_cont(0.99) within group (order by ms) p99,
       max(ms)::float8 max
     from (select extract(epoch from completed_at - due_at) * 1000 ms from tasks where title = 'lateness') l`,
  );
  await admin.query(`update tasks set title = 'lateness done' where title = 'lateness'`);
  return figures;
}

/** 10,000 tasks of the creator titled `title`, with their jobs, all due `inSeconds` from now. */
async function dueTasks(boss: { insert: PgBoss['insert'] }, title: string, inSeconds: number) {
  const { rows } = await admin.query<{ id: string; job_id: string; due_at: Date }>(
    `insert into tasks (user_id, title, job_id, due_at)
     select $1, $2, gen_random_uuid(), date_trunc('milliseconds', now() + make_interval(secs => $3))
     from generate_series(1, 10000) returning id, job_id, due_at`,
    [creator.id, title, inSeconds],
  );
  for (let i = 0; i < rows.length; i += 1_000) {
    await boss.insert(
      COMPLETE_TASK,
      rows
        .slice(i, i + 1_000)
        .map((task) => ({ id: task.job_id, data: { taskId: Number(task.id) }, startAfter: task.due_at })),
    );
  }
  return rows;
}

/** 10,000 tasks whose jobs come due at once, 3 s from now: completions per second of the worker. */
async function drain() {
  const boss = await startBoss({ url: database.url, log, role: 'migrate', poolSize: 2 });
  await dueTasks(boss, 'drain', 3);
  await boss.stop({ graceful: false });
  while ((await count(`select count(*) n from tasks where title = 'drain' and status = 'pending'`)) > 0) {
    await sleep(100);
  }
  const span = await one<{ seconds: number }>(
    `select extract(epoch from max(completed_at) - min(due_at))::float8 as seconds from tasks where title = 'drain'`,
  );
  await admin.query(`update tasks set title = 'drain done' where title = 'drain'`);
  return 10_000 / span.seconds;
}

/** The tables whose rows have a retention, with their indexes and TOAST: MiB. */
const RETAINED = ['pgboss.job_common', 'task_events', 'idempotency_keys', 'rate_limits', 'webhook_deliveries'] as const;
async function retainedSizes() {
  const sizes: Record<string, number> = {};
  for (const table of RETAINED) {
    sizes[table] = mib(
      (await one<{ bytes: string }>('select pg_total_relation_size($1::regclass) as bytes', [table])).bytes,
    );
  }
  return sizes;
}

/**
 * The retention soak: three times, 100,000 tasks created and completed (with an idempotency key, a rate-limit
 * counter and a webhook delivery each), then the clock moved past every retention (rows aged in place),
 * the purges run (the worker's reconciliation every second, and pg-boss's deletion, which it runs once a
 * day per queue by default, asked for here), and a plain VACUUM (what autovacuum does). Ageing the rows
 * in place writes a second version of each, so the first round leaves the tables about twice their
 * contents; from then on the rounds must leave them about the same size: space freed is used again.
 */
async function soak() {
  const SOAK = 100_000;
  const ROUNDS = 3;
  const worker = await startRole('worker', database.url, 'worker started', { RECONCILE_INTERVAL_SECONDS: '1' });
  const boss = new PgBoss({
    connectionString: database.url,
    schema: 'pgboss',
    supervise: false,
    maintenanceIntervalSeconds: 1,
  });
  boss.on('error', (error) => log.error({ err: error }, 'pg-boss error'));
  await boss.start();
  const endpoint = await one<{ id: string }>(
    `insert into webhook_endpoints (user_id, url, secret, events, enabled)
     values ($1, 'https://example.com/hook', 'whsec_soak', array['task.completed'], false) returning id`,
    [creator.id],
  );
  const figures: {
    round: number;
    empty: Record<string, number>;
    peak: Record<string, number>;
    after: Record<string, number>;
  }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const empty = await retainedSizes();
    progress(`retention soak, round ${round}: creating ${SOAK.toLocaleString('en')} tasks`);
    for (let done = 0; done < SOAK; done += 10_000) {
      const rows = await dueTasks(boss, 'soak', 1);
      await admin.query(
        `insert into idempotency_keys (user_id, key, fingerprint, response)
         select $1, 'soak-' || id, 'f', '{}'::jsonb from unnest($2::bigint[]) id`,
        [creator.id, rows.map((row) => row.id)],
      );
      await admin.query(
        `insert into rate_limits (key, points, expire)
         select 'addr:soak-' || id, 1, (extract(epoch from now()) * 1000)::bigint + 60000 from unnest($1::bigint[]) id`,
        [rows.map((row) => row.id)],
      );
      await admin.query(
        `insert into webhook_deliveries (id, endpoint_id, user_id, event_tx, event_id, event_type, task_id, event_at, body,
           status, attempts, delivered_at)
         select gen_random_uuid(), $1, $2, pg_current_xact_id(), id, 'task.completed', id, now(), '{"type":"task.completed"}',
           'succeeded', 1, now()
         from unnest($3::bigint[]) id`,
        [endpoint.id, creator.id, rows.map((row) => row.id)],
      );
    }
    progress(`retention soak, round ${round}: waiting for the worker`);
    while ((await count(`select count(*) n from tasks where title = 'soak' and status = 'pending'`)) > 0)
      await sleep(500);
    const peak = await retainedSizes();
    progress(`retention soak, round ${round}: past every retention, purging`);
    await admin.query(
      `update pgboss.job set completed_on = completed_on - interval '8 days' where state = 'completed'`,
    );
    await admin.query(`update task_events set at = at - interval '2 days'`);
    await admin.query(`update idempotency_keys set created_at = created_at - interval '2 days'`);
    await admin.query('update rate_limits set expire = 0');
    await admin.query(`update webhook_deliveries set created_at = created_at - interval '8 days'`);
    await boss.supervise(COMPLETE_TASK);
    await sleep(3_000); // a reconciliation pass or two
    const left = await one<Record<string, string>>(
      `select (select count(*) from pgboss.job where state = 'completed') jobs, (select count(*) from task_events) events,
         (select count(*) from idempotency_keys) keys, (select count(*) from rate_limits) counters,
         (select count(*) from webhook_deliveries) deliveries`,
    );
    if (Object.values(left).some((n) => Number(n) > 0)) throw new Error(`not purged: ${JSON.stringify(left)}`);
    for (const table of RETAINED) await admin.query(`vacuum ${table}`);
    figures.push({ round, empty, peak, after: await retainedSizes() });
    await admin.query(`update tasks set title = 'soak done' where title = 'soak'`);
  }
  await boss.stop({ graceful: false });
  await worker.stop();
  // The soak's tasks are kept (tasks have no retention): out of the way of the sizes that follow, with no
  // deletion events.
  await admin.query('alter table tasks disable trigger user');
  await admin.query(`delete from tasks where title = 'soak done'`);
  await admin.query('alter table tasks enable trigger user');
  await admin.query('vacuum analyze tasks');
  progress('');
  console.log(
    `\nRetention soak: ${SOAK.toLocaleString('en')} tasks created and completed, then purged, ${ROUNDS} times (MiB, tables with indexes)\n`,
  );
  console.log(`| table | before | ${figures.map((f) => `after round ${f.round} | purged + VACUUM`).join(' | ')} |`);
  console.log(`|---|---|${figures.map(() => '---|---|').join('')}`);
  for (const table of RETAINED) {
    const cells = figures.map((f) => `${f.peak[table]?.toFixed(1)} | ${f.after[table]?.toFixed(1)}`);
    console.log(`| ${table} | ${figures[0]?.empty[table]?.toFixed(1)} | ${cells.join(' | ')} |`);
  }
  return figures;
}

type Row = {
  tasks: number;
  seedSeconds: number;
  createPerSecond: number;
  listPerSecond: number;
  lateness: { p50: number; p99: number; max: number };
  drainPerSecond: number;
  mibPerMillion: { tasksTable: number; tasksIndexes: number; jobTable: number; jobIndexes: number; events: number };
  jobRows: number;
  eventRows: number;
};
const soaked = process.env.BENCH_SOAK === 'false' ? null : await soak();
const rows: Row[] = [];
let seeded = 0;
// The list user's 1,000 tasks, the same at every size.
await admin.query(
  `insert into tasks (user_id, title, status, due_at, completed_at, job_id)
   select $1, 'listed', 'completed', now(), now(), gen_random_uuid() from generate_series(1, 1000)`,
  [lister.id],
);
for (const size of sizes) {
  progress(`seeding up to ${size.toLocaleString('en')} tasks`);
  const started = performance.now();
  // Set-based, without the event triggers (the last day's events are written apart), and with the task
  // indexes built once afterwards rather than row by row.
  const { rows: indexes } = await admin.query<{ name: string; definition: string }>(
    `select indexname as name, indexdef as definition from pg_indexes
     where schemaname = 'public' and tablename = 'tasks' and indexname <> 'tasks_pkey'`,
  );
  for (const { name } of indexes) await admin.query(`drop index ${name}`);
  await admin.query('alter table tasks disable trigger user');
  for (let done = seeded; done < size; done += 1_000_000) await grow(Math.min(1_000_000, size - done));
  await admin.query('alter table tasks enable trigger user');
  for (const { definition } of indexes) await admin.query(definition);
  await admin.query('vacuum analyze tasks');
  await admin.query('vacuum analyze pgboss.job');
  await admin.query('vacuum analyze task_events');
  const seedSeconds = (performance.now() - started) / 1000;
  seeded = size;

  const worker = await startRole('worker', database.url, 'worker started');
  const web = await startRole('web', database.url, 'listening on');
  const base = `http://127.0.0.1:${web.port}`;
  const creates: number[] = [];
  const lists: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    progress(`${size.toLocaleString('en')} tasks: round ${round}/${rounds} of create and list`);
    creates.push(await load(base, 'POST', bearer(creator.id)));
    await admin.query('analyze tasks');
    lists.push(await load(base, 'GET', bearer(lister.id)));
  }
  progress(`${size.toLocaleString('en')} tasks: lateness`);
  const late = await lateness();
  progress(`${size.toLocaleString('en')} tasks: drain of 10,000`);
  const drainPerSecond = await drain();
  await web.stop();
  await worker.stop();

  const tasks = await sizeOf('tasks');
  const job = await sizeOf('pgboss.job_common');
  const events = await sizeOf('task_events');
  const millions = size / 1_000_000;
  rows.push({
    tasks: size,
    seedSeconds,
    createPerSecond: median(creates),
    listPerSecond: median(lists),
    lateness: late,
    drainPerSecond,
    mibPerMillion: {
      tasksTable: mib(tasks.table) / millions,
      tasksIndexes: mib(tasks.indexes) / millions,
      jobTable: mib(job.table) / millions,
      jobIndexes: mib(job.indexes) / millions,
      events: (mib(events.table) + mib(events.indexes)) / millions,
    },
    jobRows: await count('select count(*) n from pgboss.job'),
    eventRows: await count('select count(*) n from task_events'),
  });
}
progress('');

console.log(
  `\nCost against the data: tasks of ${USERS.toLocaleString('en')} users, 95 % completed; create and list at ` +
    `concurrency 16 (${rounds} rounds of ${seconds} s, medians), lateness of 500 tasks, a drain of 10,000\n`,
);
console.log(
  '| tasks | seed s | create req/s | list req/s | lateness p50 / p99 / max ms | drain /s | job rows | event rows | ' +
    'MiB per million tasks: tasks table + indexes, job table + indexes, events |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  const m = row.mibPerMillion;
  console.log(
    `| ${row.tasks.toLocaleString('en')} | ${row.seedSeconds.toFixed(0)} | ${row.createPerSecond.toFixed(0)} | ` +
      `${row.listPerSecond.toFixed(0)} | ${row.lateness.p50.toFixed(0)} / ${row.lateness.p99.toFixed(0)} / ` +
      `${row.lateness.max.toFixed(0)} | ${row.drainPerSecond.toFixed(0)} | ${row.jobRows.toLocaleString('en')} | ` +
      `${row.eventRows.toLocaleString('en')} | ${m.tasksTable.toFixed(0)} + ${m.tasksIndexes.toFixed(0)}, ` +
      `${m.jobTable.toFixed(0)} + ${m.jobIndexes.toFixed(0)}, ${m.events.toFixed(0)} |`,
  );
}
const first = rows[0];
const last = rows.at(-1);
if (first && last && last !== first) {
  console.log(
    `\nAt ${last.tasks.toLocaleString('en')} against ${first.tasks.toLocaleString('en')}: create ` +
      `${(last.createPerSecond / first.createPerSecond).toFixed(2)}, list ${(last.listPerSecond / first.listPerSecond).toFixed(2)} ` +
      '(goal: 0.8 or more each)',
  );
}
await writeReport('scale', { sizes: rows, soak: soaked });
await admin.end();
await database.stop();
