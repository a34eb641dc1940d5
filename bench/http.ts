/**
 * The API against the database's own ceiling, for `POST /tasks` (create) and `GET /tasks` (list, a user
 * with 1,000 tasks, pages of 20), at concurrency 1, 16 and 64:
 * - the API through HTTP (autocannon as a library) against a web process started as the Procfile starts
 *   it, so the load generator and the service never share a CPU's time in one process: requests/s, p50
 *   and p99 latency, errors;
 * - the same statements sent from Node with plain `pg` (a pool of DATABASE_POOL_SIZE): operations/s;
 * - the same statements run by pgbench, where it is installed: transactions/s; and, beside it, pgbench
 *   without the user read, the statement every authenticated request adds (stale tokens are refused);
 * - the peer: the same two routes in Fastify 5 + `pg` (bench/peer.ts), on a database of its own (so that
 *   neither server works on the other's NOTIFYs), through HTTP as the API is. For both servers, the CPU
 *   time their process used per 1,000 requests (utime + stime over the load's window).
 * "The same statements" are what the request sends: the user read (id and role of the token's subject),
 * then for create the task insert and pg-boss's own job insert in one transaction, for list the SELECT.
 * Both servers first serve each operation for BENCH_WARMUP_SECONDS (default 10) unmeasured, so the rounds
 * see them warm. Each round runs every side once, and rounds repeat (BENCH_ROUNDS, default 3), so a noisy machine slows
 * all sides alike; medians are reported. Prints a markdown table and writes .artifacts/bench-http.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { COMPLETE_TASK } from '../src/db/queues.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { benchDatabase } from './database.ts';
import { median, progress, writeReport } from './report.ts';
import { BENCH_JWT_SECRET, cpuMs, rssMiB, startRole } from './roles.ts';

const config = loadConfig();
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const warmUpSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 10);
const concurrencies = (process.env.BENCH_CONCURRENCIES ?? '1,16,64').split(',').map(Number);
const log = createLogger({ LOG_LEVEL: 'warn' });
const database = await benchDatabase('task_manager_bench_http', log);
const web = await startRole('web', database.url, 'listening on');
const base = `http://127.0.0.1:${web.port}`;
const peerDatabase = await benchDatabase('task_manager_bench_http_peer', log);
const peer = await startRole('peer', peerDatabase.url, 'listening on', {
  DATABASE_POOL_SIZE: String(config.DATABASE_POOL_SIZE),
});
const peerBase = `http://127.0.0.1:${peer.port}`;
/** A new account and a token for it. */
async function user(email: string) {
  const registered = await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: 'password123' }),
  });
  const id = ((await registered.json()) as { id: number }).id;
  const token = signToken({ id, role: 'user' }, { secret: BENCH_JWT_SECRET, expiresInSeconds: 3600 });
  return { id, authorization: `Bearer ${token}` };
}
// Creates go to one account, so that the list account keeps its 1,000 tasks from round to round.
const creator = await user('creator@example.com');
const lister = await user('lister@example.com');
// pg-boss in this process, for the plain-pg side: it builds the job insert that the web process sends. Its
// connection is labelled as the release step's, so it is not counted among the web process's.
const boss = await startBoss({ url: database.url, log, role: 'migrate', poolSize: 1 });

/** The list account's 1,000 tasks, sent through a server's own POST /tasks, 50 at a time. */
async function seedList(server: string, authorization: string) {
  for (let i = 0; i < 1_000; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, () =>
        fetch(`${server}/tasks`, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json' },
          body: JSON.stringify({ title: 'seed' }),
        }),
      ),
    );
  }
}
await seedList(base, lister.authorization);
// The peer's two accounts, in its own database (it has no /register), and the list account's 1,000 tasks
// sent through its own POST /tasks.
const peerPool = new pg.Pool({ connectionString: peerDatabase.url, max: 2 });
const peerUser = async (email: string) => {
  const { rows } = await peerPool.query<{ id: string }>(
    `insert into users (email, password_hash) values ($1, 'x') returning id`,
    [email],
  );
  const id = Number(rows[0]?.id);
  return {
    id,
    authorization: `Bearer ${signToken({ id, role: 'user' }, { secret: BENCH_JWT_SECRET, expiresInSeconds: 3600 })}`,
  };
};
const peerCreator = await peerUser('creator@example.com');
const peerLister = await peerUser('lister@example.com');
await seedList(peerBase, peerLister.authorization);

// The statements of a request, as the service sends them: the user read, then the task insert and pg-boss's
// own job insert in one transaction, or the list's SELECT.
const readActor = 'select id, role, token_generation from users where id = $1';
const insertTask = `insert into tasks (user_id, title, description, job_id, due_at)
  values ($1, 'bench', '', $2, date_trunc('milliseconds', now() + make_interval(secs => 120)))
  returning id, due_at`;
const listTasks = `select id, user_id, title, description, status, due_at, completed_at, created_at, updated_at, job_id
  from tasks where user_id = $1 order by id desc limit 21`;
const plain = new pg.Pool({ connectionString: database.url, max: config.DATABASE_POOL_SIZE });
let jobSql: { text: string; values: unknown[] } | null = null;
const createWithPg = async () => {
  await plain.query(readActor, [creator.id]);
  const client = await plain.connect();
  try {
    await client.query('begin');
    const jobId = crypto.randomUUID();
    const { rows } = await client.query(insertTask, [creator.id, jobId]);
    await boss.send(
      COMPLETE_TASK,
      { taskId: rows[0].id },
      {
        id: jobId,
        startAfter: rows[0].due_at,
        db: {
          executeSql: async (text: string, values: unknown[] = []) => {
            jobSql ??= { text, values };
            return client.query(text, values);
          },
        },
      },
    );
    await client.query('commit');
  } finally {
    client.release();
  }
};
const listWithPg = async () => {
  await plain.query(readActor, [lister.id]);
  return plain.query(listTasks, [lister.id]);
};

/**
 * Before each list: the creates' tasks and jobs go, and VACUUM ANALYZE leaves the table as autovacuum
 * would, so every list sample reads the same 1,000 tasks with fresh statistics. Otherwise the planner,
 * with statistics older than the last creates, may walk the primary key backwards past thousands of the
 * creator's newer tasks (each one checked for visibility) to find the list user's 21.
 */
async function resetListState() {
  for (const [pool, user] of [
    [plain, creator],
    [peerPool, peerCreator],
  ] as const) {
    await pool.query(
      `with gone as (delete from tasks where user_id = $1 returning job_id)
       delete from pgboss.job where name = $2 and id in (select job_id from gone)`,
      [user.id, COMPLETE_TASK],
    );
    await pool.query('vacuum analyze tasks');
    await pool.query('vacuum analyze pgboss.job');
  }
}

/** Operations per second of `operation` run by `concurrency` loops for `seconds`. */
async function loops(concurrency: number, operation: () => Promise<unknown>) {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await operation();
        done++;
      }
    }),
  );
  return done / seconds;
}

/** The web process's highest resident memory and database connections while the API is under load. */
const peak = { rssMiB: 0, connections: 0 };
async function samplePeak(until: Promise<unknown>) {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  while (!done) {
    const { rows } = await plain.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where application_name = 'task-manager-web'`,
    );
    peak.connections = Math.max(peak.connections, rows[0]?.n ?? 0);
    peak.rssMiB = Math.max(peak.rssMiB, await rssMiB(web.child.pid ?? 0));
    await sleep(250);
  }
}

/** One side through HTTP: requests/s, latency, errors, and its server process's CPU ms per 1,000 requests. */
async function http(
  side: { base: string; pid: number; creator: { authorization: string }; lister: { authorization: string } },
  concurrency: number,
  method: 'POST' | 'GET',
  duration = seconds,
) {
  const cpuBefore = await cpuMs(side.pid);
  const running = Promise.resolve(
    autocannon({
      url: method === 'POST' ? `${side.base}/tasks` : `${side.base}/tasks?limit=20`,
      method,
      connections: concurrency,
      duration,
      headers: {
        authorization: method === 'POST' ? side.creator.authorization : side.lister.authorization,
        'content-type': 'application/json',
      },
      ...(method === 'POST' && { body: JSON.stringify({ title: 'bench' }) }),
    }),
  );
  if (side.pid === web.child.pid) await samplePeak(running);
  const result = await running;
  const cpu = (await cpuMs(side.pid)) - cpuBefore;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    cpuPer1000: (cpu / Math.max(1, result.requests.total)) * 1000,
  };
}
const apiSide = { base, pid: web.child.pid ?? 0, creator, lister };
const peerSide = { base: peerBase, pid: peer.child.pid ?? 0, creator: peerCreator, lister: peerLister };

/** pgbench with a script file, at `concurrency` clients: transactions per second (null without pgbench). */
async function pgbench(script: string, concurrency: number): Promise<number | null> {
  try {
    execFileSync('pgbench', ['--version'], { stdio: 'ignore' });
  } catch {
    return null;
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'pgbench-'));
  const file = path.join(dir, 'script.sql');
  await writeFile(file, script);
  const out = execFileSync(
    'pgbench',
    [
      '-n',
      '-c',
      String(concurrency),
      '-j',
      String(Math.min(concurrency, 2)),
      '-T',
      String(seconds),
      '-f',
      file,
      database.url,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
}

await createWithPg(); // captures pg-boss's job insert for the pgbench script
const captured = jobSql as { text: string; values: unknown[] } | null;
if (captured?.values.length !== 1) throw new Error("pg-boss's job insert changed shape: update bench/http.ts");
// pgbench: the task insert hands its generated job id to pg-boss's statement (\gset), in one transaction.
// pgbench replaces :job_id even inside the JSON literal, where the captured job's id stood.
const capturedJson = typeof captured.values[0] === 'string' ? captured.values[0] : JSON.stringify(captured.values[0]);
const capturedId = (JSON.parse(capturedJson) as { id?: string }[])[0]?.id ?? '';
if (!capturedId) throw new Error("pg-boss's job insert carries no id: update bench/http.ts");
const jobJson = capturedJson.replaceAll(capturedId, ':job_id').replaceAll("'", "''");
const createTransaction = `BEGIN;
insert into tasks (user_id, title, description, job_id, due_at) values (${creator.id}, 'bench', '', gen_random_uuid(), date_trunc('milliseconds', now() + make_interval(secs => 120))) returning job_id \\gset
${captured.text.replace('$1', `'${jobJson}'`).replace(/\s+/g, ' ').trim()};
COMMIT;
`;
const listSelect = `${listTasks.replace('$1', String(lister.id))};\n`;
const actorOf = (id: number) => `${readActor.replace('$1', String(id))};\n`;
const scripts = {
  create: { full: actorOf(creator.id) + createTransaction, bare: createTransaction },
  list: { full: actorOf(lister.id) + listSelect, bare: listSelect },
};

type Sample = {
  api: Awaited<ReturnType<typeof http>>;
  peer: Awaited<ReturnType<typeof http>>;
  pg: number;
  pgbench: number | null;
  pgbenchBare: number | null;
};
// Both servers first serve each operation unmeasured, so that the rounds see them in their steady state
// (V8 compiles hot code in tiers, and the heap sizes itself, over the first tens of thousands of requests:
// measured from a cold start, the first rounds cost either server up to half as much CPU again).
for (const [name, method] of [
  ['create', 'POST'],
  ['list', 'GET'],
] as const) {
  progress(`warm-up: ${name}, ${warmUpSeconds} s per server`);
  if (name === 'list') await resetListState();
  for (const side of [apiSide, peerSide]) await http(side, 16, method, warmUpSeconds);
}
const samples = new Map<string, Sample[]>();
for (let round = 1; round <= rounds; round++) {
  for (const concurrency of concurrencies) {
    for (const [name, method, viaPg] of [
      ['create', 'POST', createWithPg],
      ['list', 'GET', listWithPg],
    ] as const) {
      progress(`round ${round}/${rounds}: ${name} at concurrency ${concurrency}`);
      if (name === 'list') await resetListState();
      const sample = {
        api: await http(apiSide, concurrency, method),
        peer: await http(peerSide, concurrency, method),
        pg: await loops(concurrency, viaPg),
        pgbench: await pgbench(scripts[name].full, concurrency),
        pgbenchBare: await pgbench(scripts[name].bare, concurrency),
      };
      const key = `${name} ${concurrency}`;
      samples.set(key, [...(samples.get(key) ?? []), sample]);
    }
  }
}
progress('');

const rows = [...samples].map(([key, list]) => {
  const [operation, concurrency] = key.split(' ');
  const row = {
    operation,
    concurrency: Number(concurrency),
    apiPerSecond: median(list.map((s) => s.api.rps)),
    p50Ms: median(list.map((s) => s.api.p50)),
    p99Ms: median(list.map((s) => s.api.p99)),
    errors: list.reduce((sum, s) => sum + s.api.errors, 0),
    pgPerSecond: median(list.map((s) => s.pg)),
    apiCpuPer1000: median(list.map((s) => s.api.cpuPer1000)),
    peerPerSecond: median(list.map((s) => s.peer.rps)),
    peerP50Ms: median(list.map((s) => s.peer.p50)),
    peerP99Ms: median(list.map((s) => s.peer.p99)),
    peerErrors: list.reduce((sum, s) => sum + s.peer.errors, 0),
    peerCpuPer1000: median(list.map((s) => s.peer.cpuPer1000)),
    pgbenchPerSecond: list[0]?.pgbench === null ? null : median(list.map((s) => s.pgbench ?? Number.NaN)),
    pgbenchWithoutUserReadPerSecond:
      list[0]?.pgbenchBare === null ? null : median(list.map((s) => s.pgbenchBare ?? Number.NaN)),
  };
  return row;
});
const ratio = (a: number, b: number | null) => (b ? (a / b).toFixed(2) : 'n/a');
console.log(
  `\nPOST /tasks and GET /tasks against their ceilings: ${rounds} interleaved rounds of ${seconds} s after ` +
    `${warmUpSeconds} s of warm-up per server and operation, medians; ` +
    `PostgreSQL ${process.env.BENCH_DATABASE_URL ? '(BENCH_DATABASE_URL)' : 'embedded'}, API pool ${config.DATABASE_POOL_SIZE}\n`,
);
console.log(
  '| operation | concurrency | API req/s | p50 ms | p99 ms | errors | plain pg ops/s | pgbench tps | API / pg | API / pgbench ' +
    '| pgbench tps without the user read | API / that |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  console.log(
    `| ${row.operation} | ${row.concurrency} | ${row.apiPerSecond.toFixed(0)} | ${row.p50Ms} | ${row.p99Ms} | ${row.errors} | ` +
      `${row.pgPerSecond.toFixed(0)} | ${row.pgbenchPerSecond?.toFixed(0) ?? 'n/a'} | ${ratio(row.apiPerSecond, row.pgPerSecond)} | ` +
      `${ratio(row.apiPerSecond, row.pgbenchPerSecond)} | ${row.pgbenchWithoutUserReadPerSecond?.toFixed(0) ?? 'n/a'} | ` +
      `${ratio(row.apiPerSecond, row.pgbenchWithoutUserReadPerSecond)} |`,
  );
}
console.log(
  '\nAgainst the peer (Fastify 5 + pg, the same statements, bench/peer.ts): requests/s, and CPU ms of each ' +
    'server process per 1,000 requests\n',
);
console.log(
  '| operation | concurrency | API req/s | peer req/s | API / peer | API p99 ms | peer p99 ms | API CPU ms / 1k | peer CPU ms / 1k | CPU API / peer |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const row of rows) {
  console.log(
    `| ${row.operation} | ${row.concurrency} | ${row.apiPerSecond.toFixed(0)} | ${row.peerPerSecond.toFixed(0)} | ` +
      `${ratio(row.apiPerSecond, row.peerPerSecond)} | ${row.p99Ms} | ${row.peerP99Ms} | ${row.apiCpuPer1000.toFixed(0)} | ` +
      `${row.peerCpuPer1000.toFixed(0)} | ${ratio(row.apiCpuPer1000, row.peerCpuPer1000)} |`,
  );
}
console.log(
  `\nThe web process under this load: ${peak.rssMiB.toFixed(0)} MiB resident at most, ` +
    `${peak.connections} database connections at most.`,
);
const serverVersion =
  (await plain.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]?.v ?? 'unknown';
await writeReport('http', {
  rows,
  rounds,
  seconds,
  poolSize: config.DATABASE_POOL_SIZE,
  serverVersion,
  web: { peakRssMiB: peak.rssMiB, peakConnections: peak.connections },
});

await plain.end();
await peerPool.end();
await boss.stop({ graceful: false });
await web.stop();
await peer.stop();
await database.stop();
await peerDatabase.stop();
