import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import pg from 'pg';
import { query } from './helpers/db.ts';
import { PGBOUNCER, type PgBouncer, startPgBouncer } from './helpers/pgbouncer.ts';
import { eventually, listeningUrl, type ServiceProcess, spawnService } from './helpers/process.ts';
import { client, signUp, TEST_SECRET } from './helpers/service.ts';
import { openStream } from './helpers/sse.ts';

// The Procfile's roles with DATABASE_URL on PgBouncer in transaction mode (its defaults otherwise: no
// ignore_startup_parameters) and DATABASE_DIRECT_URL on the server, as on Heroku, Supabase or Neon.
if (!PGBOUNCER) console.log('pooler: pgbouncer is not installed, so the pooler tests are skipped');
const poolerTest = PGBOUNCER ? test.serial : test.skip;

/** PgBouncer's server connections per database and user: well under what four web processes ask for. */
const DEFAULT_POOL_SIZE = 8;
const WEB_PROCESSES = 4;
const WEB_POOL_SIZE = 20;
const AUTH_PER_MINUTE = 20;

let pgbouncer: PgBouncer;
let directUrl: string;
let pooledUrl: string;
let release: ServiceProcess;
const processes: ServiceProcess[] = [];
let bases: string[] = [];
let token = '';
const adminUrl = process.env.TEST_ADMIN_URL ?? '';
const name = `task_manager_test_pooler_${randomBytes(4).toString('hex')}`;

test.before(async (t) => {
  if (!PGBOUNCER) return;
  t.timeout(90_000, 'starting PgBouncer and six processes');
  pgbouncer = await startPgBouncer(adminUrl, DEFAULT_POOL_SIZE);
  // An empty database: the release step installs everything through the direct URL.
  await query(adminUrl, `create database ${name}`);
  directUrl = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  pooledUrl = pgbouncer.url(name);
  const env = {
    DATABASE_URL: pooledUrl,
    DATABASE_DIRECT_URL: directUrl,
    JWT_SECRET: TEST_SECRET,
    DATABASE_POOL_SIZE: String(WEB_POOL_SIZE),
    RATE_LIMIT_AUTH_PER_MINUTE: String(AUTH_PER_MINUTE),
    TASK_COMPLETION_DELAY_SECONDS: '2',
    // The safety-net poll out of the way: a task on time was woken by the LISTEN on the direct URL.
    WORKER_POLL_INTERVAL_SECONDS: '60',
    RECONCILE_INTERVAL_SECONDS: '1',
  };
  release = spawnService('migrate', env);
  await release.exited;
  processes.push(spawnService('worker', env));
  for (let i = 0; i < WEB_PROCESSES; i++) processes.push(spawnService('web', env));
  bases = await Promise.all(processes.slice(1).map((web) => listeningUrl(web)));
  await processes[0]?.waitFor((line) => line.msg === 'worker started');
  ({ token } = await signUp(client(bases[0] ?? '')));
});

test.after.always(async () => {
  for (const child of processes) child.child.kill('SIGTERM');
  await Promise.all(processes.map((child) => child.exited));
  await pgbouncer?.stop();
  if (PGBOUNCER) await query(adminUrl, `drop database if exists ${name} with (force)`);
});

const base = (i: number) => bases[i % bases.length] ?? '';
const web = (i: number) => client(base(i));

poolerTest('the release step installs through the direct URL and sets the server-side session bounds', async (t) => {
  t.is((await release.exited).code, 0);
  const [migrations] = await query<{ count: number }>(directUrl, 'select count(*)::int as count from pgmigrations');
  t.true((migrations?.count ?? 0) > 0);
  // What a pooled session gets: the role's defaults, since no startup parameter could carry them.
  const [bounds] = await query<{ statement_timeout: string; idle: string }>(
    pooledUrl,
    `select current_setting('statement_timeout') as statement_timeout,
            current_setting('idle_in_transaction_session_timeout') as idle`,
  );
  t.deepEqual(bounds, { statement_timeout: '30s', idle: '1min' });
  for (const child of processes) {
    t.false(
      child.lines.some((line) => line.level >= 50),
      `no error logged: ${JSON.stringify(child.lines.filter((line) => line.level >= 50))}`,
    );
  }
});

type TaskRow = { id: number; status: string; due_at: Date; completed_at: Date | null; job_id: string };

poolerTest('create, complete on time, Prefer: wait and the event stream, each on another web process', async (t) => {
  const stream = await openStream(`${base(1)}/tasks/events`, token);
  t.teardown(() => stream.close());
  const created = await web(2).post('/tasks', { title: 'through the pooler', delay_seconds: 1 }, token);
  t.is(created.status, 201);
  const waited = await web(3).raw('GET', `/tasks/${created.body.id}`, {
    headers: { authorization: `Bearer ${token}`, prefer: 'wait=10' },
  });
  t.is(waited.body.status, 'completed');
  const lateness = Date.parse(waited.body.completed_at) - Date.parse(waited.body.due_at);
  t.log(`completed ${lateness} ms after due_at (the poll is 60 s: the wake timer's LISTEN did it)`);
  t.true(lateness >= 0 && lateness < 1_000, `${lateness} ms late`);
  const events = await stream.until(2, 5_000);
  t.deepEqual(
    events.map((event) => [event.event, event.data.task_id]),
    [
      ['created', created.body.id],
      ['completed', created.body.id],
    ],
  );
});

poolerTest('an idempotency key holds across web processes', async (t) => {
  const send = (i: number) =>
    web(i).raw('POST', '/tasks', {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': 'pooled-1' },
      body: JSON.stringify({ title: 'once' }),
    });
  const [first, second] = [await send(0), await send(1)];
  t.is(first.status, 201);
  t.deepEqual(second.body, first.body);
  const rows = await query(directUrl, `select id from tasks where title = 'once'`);
  t.is(rows.length, 1);
});

poolerTest('reconciliation gives a task whose job was lost a new one, and it completes', async (t) => {
  const created = await web(1).post('/tasks', { title: 'orphan', delay_seconds: 2 }, token);
  await query(directUrl, 'delete from pgboss.job where id = $1', [created.body.job_id]);
  const done = await eventually(async () => {
    const [task] = await query<TaskRow>(directUrl, 'select * from tasks where id = $1', [created.body.id]);
    return task?.status === 'completed' && task;
  }, 15_000);
  t.not(done.job_id, created.body.job_id);
});

poolerTest("four web processes of 20 connections each share PgBouncer's server connections", async (t) => {
  const before = await xactCount();
  let running = true;
  let requests = 0;
  const statuses = new Set<number>();
  const load = Array.from({ length: WEB_PROCESSES * WEB_POOL_SIZE }, async (_, i) => {
    while (running) {
      statuses.add((await web(i).get('/tasks?limit=5', token)).status);
      requests++;
    }
  });
  const samples: { clients: number; servers: number; backends: number }[] = [];
  const sampler = new pg.Client(directUrl);
  await sampler.connect();
  t.teardown(() => sampler.end());
  const until = Date.now() + 3_000;
  while (Date.now() < until) {
    const [pool] = (await pgbouncer.admin<Record<string, string>>('show pools')).filter((row) => row.database === name);
    const { rows } = await sampler.query<{ count: number }>(
      // Client backends only: an autovacuum worker on this database shows in pg_stat_activity too.
      `select count(*)::int as count from pg_stat_activity
       where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()`,
    );
    samples.push({
      clients: Number(pool?.cl_active) + Number(pool?.cl_waiting),
      servers: ['sv_active', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login'].reduce(
        (sum, field) => sum + Number(pool?.[field] ?? 0),
        0,
      ),
      backends: rows[0]?.count ?? 0,
    });
    await sleep(100);
  }
  running = false;
  await Promise.all(load);
  t.deepEqual([...statuses], [200]);
  const after = await xactCount();
  const most = (field: 'clients' | 'servers' | 'backends') => Math.max(...samples.map((sample) => sample[field]));
  t.log(
    `${requests} requests; PgBouncer: up to ${most('clients')} client connections on ${most('servers')} server connections ` +
      `(default_pool_size ${DEFAULT_POOL_SIZE}); Postgres backends of the database: up to ${most('backends')}; ` +
      `SHOW STATS transactions: ${after - before}`,
  );
  t.true(most('clients') > DEFAULT_POOL_SIZE * 2, 'the web processes held many client connections');
  t.true(most('servers') <= DEFAULT_POOL_SIZE);
  // The server sees PgBouncer's connections plus the direct LISTENs: one per web process, one for the worker.
  t.true(most('backends') <= DEFAULT_POOL_SIZE + WEB_PROCESSES + 1, `${most('backends')} backends`);
  // Each request is at least one transaction through PgBouncer (the user read and the list).
  t.true(after - before >= requests, `${after - before} transactions for ${requests} requests`);
});

// Last: it spends the address's login allowance.
poolerTest('the login rate limit counts across web processes', async (t) => {
  const statuses: number[] = [];
  for (let i = 0; i < AUTH_PER_MINUTE + 4; i++) {
    const reply = await web(i).post('/login', { email: `nobody${i}@example.com`, password: 'wrong-password' });
    statuses.push(reply.status);
  }
  const firstRefusal = statuses.indexOf(429);
  t.true(firstRefusal > 0 && firstRefusal <= AUTH_PER_MINUTE, statuses.join(' '));
  t.true(
    statuses.slice(firstRefusal).every((status) => status === 429),
    statuses.join(' '),
  );
});

async function xactCount(): Promise<number> {
  const rows = await pgbouncer.admin<{ database: string; total_xact_count: string }>('show stats');
  return Number(rows.find((row) => row.database === name)?.total_xact_count ?? 0);
}
