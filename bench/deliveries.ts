/**
 * Webhooks: BENCH_DELIVERY_TASKS (default 2,000) tasks of 10 users come due within 2 s, and a worker
 * process (started as the Procfile starts it) completes them. With one endpoint per user on a receiver
 * here (127.0.0.1), every completion is delivered: deliveries/s (first to last arrival), the time from the
 * task's `completed_at` (its completion's transaction) to the receiver, p50/p99, and how many were lost.
 * Beside it, the same drain with no endpoint at all, and with a busy neighbour (an 11th user whose 10
 * endpoints hang 30 s): completions/s of each (what the relay and a delivery storm cost the drain). The
 * noisy-neighbour round: a healthy user's delivery latency, alone and beside a user whose endpoints hang. Then POST /tasks through a web process (autocannon, concurrency 16, 3 s) by a user with no
 * endpoint and by one with an endpoint, the worker relaying meanwhile. Rounds interleave (BENCH_ROUNDS,
 * default 2); medians.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import pg from 'pg';
import { COMPLETE_TASK } from '../src/db/queues.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { benchDatabase } from './database.ts';
import { median, progress, writeReport } from './report.ts';
import { BENCH_JWT_SECRET, startRole } from './roles.ts';

const total = Number(process.env.BENCH_DELIVERY_TASKS ?? 2_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const USERS = 10;
const DUE_IN_SECONDS = 8; // the worker boots first
const SPREAD_MS = 2_000;
const log = createLogger({ LOG_LEVEL: 'warn' });
const workerEnv = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_ALLOW_HTTP: 'true' };

/**
 * A receiver that answers 204 (at once, or after `delayMs`: a hanging endpoint) and notes when each delivery
 * (by webhook-id) first arrived, with its task's completed_at and created_at.
 */
async function startReceiver(delayMs = 0) {
  const arrivals = new Map<string, { at: number; completedAt: number; createdAt: number }>();
  let requests = 0;
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      requests++;
      const id = String(request.headers['webhook-id']);
      if (!arrivals.has(id)) {
        const { data } = JSON.parse(body);
        arrivals.set(id, {
          at: Date.now(),
          completedAt: Date.parse(data.completed_at),
          createdAt: Date.parse(data.created_at),
        });
      }
      if (delayMs === 0) response.writeHead(204).end();
      else setTimeout(() => response.destroyed || response.writeHead(204).end(), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    arrivals,
    get requests() {
      return requests;
    },
    url: `http://127.0.0.1:${port}/hook`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

const SECRET_SQL = `'whsec_' || encode(decode(md5(random()::text) || md5(random()::text), 'hex'), 'base64')`;

/**
 * A fresh database: USERS users (each with one endpoint when `receiver`), and `total` tasks due soon. With
 * `hanging`, one more user, whose tasks are among them, has 10 endpoints there (a busy neighbour).
 */
async function seeded(receiver: Receiver | null, hanging: Receiver | null = null) {
  const database = await benchDatabase('task_manager_bench_deliveries', log);
  const client = new pg.Client(database.url);
  await client.connect();
  await client.query(
    `insert into users (email, password_hash) select 'd' || g || '@example.com', 'x' from generate_series(1, $1) g`,
    [USERS + (hanging ? 1 : 0)],
  );
  if (receiver) {
    await client.query(
      `insert into webhook_endpoints (user_id, url, events, secret)
       select id, $1, '{task.completed}', ${SECRET_SQL} from users order by id limit $2`,
      [receiver.url, USERS],
    );
  }
  if (hanging) {
    await client.query(
      `insert into webhook_endpoints (user_id, url, events, secret)
       select (select max(id) from users), $1 || '/' || g, '{task.completed}', ${SECRET_SQL} from generate_series(1, 10) g`,
      [hanging.url],
    );
  }
  const tasks = await client.query<{ id: string; job_id: string; due_at: Date }>(
    `insert into tasks (user_id, title, job_id, due_at)
     select (select min(id) from users) + n % $2, 'deliver ' || n, gen_random_uuid(),
            now() + make_interval(secs => $3) + (n * $4 / $1) * interval '1 millisecond'
     from generate_series(1, $1) n returning id, job_id, due_at`,
    [total, USERS + (hanging ? 1 : 0), DUE_IN_SECONDS, SPREAD_MS],
  );
  await client.end();
  const boss = await startBoss({ url: database.url, log, role: 'migrate', poolSize: 2 });
  for (let i = 0; i < tasks.rows.length; i += 1_000) {
    await boss.insert(
      COMPLETE_TASK,
      tasks.rows
        .slice(i, i + 1_000)
        .map((task) => ({ id: task.job_id, data: { taskId: Number(task.id) }, startAfter: task.due_at })),
    );
  }
  await boss.stop({ graceful: false });
  return database;
}

/**
 * One drain: with no endpoint, with one per user, or with one per user beside a neighbour whose 10
 * endpoints hang 30 s (busy): completions/s, and (with endpoints) the healthy users' deliveries' figures.
 */
async function drain(mode: 'none' | 'endpoints' | 'busy') {
  const receiver = mode === 'none' ? null : await startReceiver();
  const hanging = mode === 'busy' ? await startReceiver(30_000) : null;
  const database = await seeded(receiver, hanging);
  const worker = await startRole('worker', database.url, 'worker started', workerEnv);
  const client = new pg.Client(database.url);
  await client.connect();
  const { rows: expected } = await client.query<{ n: number }>(
    `select count(*)::int as n from tasks t where exists (select 1 from webhook_endpoints ep where ep.user_id = t.user_id and ep.url = $1)`,
    [receiver?.url ?? ''],
  );
  const healthy = receiver ? (expected[0]?.n ?? 0) : 0;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { rows } = await client.query<{ left: number }>(
      `select count(*)::int as left from tasks where status = 'pending'`,
    );
    const delivered = receiver ? receiver.arrivals.size : 0;
    if ((rows[0]?.left === 0 && delivered === healthy) || Date.now() > deadline) break;
    await sleep(100);
  }
  const { rows } = await client.query<{ seconds: number }>(
    `select extract(epoch from max(completed_at) - min(completed_at))::float8 as seconds from tasks`,
  );
  await client.end();
  await worker.stop();
  await database.stop();
  await receiver?.close();
  await hanging?.close();
  const completionsPerSecond = total / (rows[0]?.seconds || Number.NaN);
  if (!receiver) return { completionsPerSecond };
  const arrivals = [...receiver.arrivals.values()];
  const times = arrivals.map((arrival) => arrival.at);
  const lateness = arrivals.map((arrival) => arrival.at - arrival.completedAt).sort((a, b) => a - b);
  const at = (q: number) => lateness[Math.min(lateness.length - 1, Math.floor(q * lateness.length))] ?? Number.NaN;
  return {
    completionsPerSecond,
    deliveriesPerSecond: arrivals.length / ((Math.max(...times) - Math.min(...times)) / 1000 || Number.NaN),
    p50: at(0.5),
    p99: at(0.99),
    lost: healthy - arrivals.length,
    duplicates: receiver.requests - arrivals.length,
  };
}

const NEIGHBOUR_SECONDS = Number(process.env.BENCH_NEIGHBOUR_SECONDS ?? 20);

/**
 * The noisy neighbour: a healthy user creates a task a second, each announced (task.created) to one
 * endpoint here, timed from the task's created_at to its arrival; beside them (with `slow`) another user
 * creates ten a second, each announced to 10 endpoints that hang 30 s. Tasks are written by SQL (their
 * trigger writes the events and wakes the worker's relay, as a web process's create does).
 */
async function neighbour(slow: boolean) {
  const healthy = await startReceiver();
  const hanging = await startReceiver(30_000);
  const database = await benchDatabase('task_manager_bench_deliveries', log);
  const client = new pg.Client(database.url);
  await client.connect();
  const { rows } = await client.query<{ id: string }>(
    `insert into users (email, password_hash) values ('healthy@example.com', 'x'), ('noisy@example.com', 'x')
     returning id`,
  );
  const [good, noisy] = rows.map((row) => Number(row.id));
  await client.query(
    `insert into webhook_endpoints (user_id, url, events, secret) values ($1, $2, '{task.created}', ${SECRET_SQL})`,
    [good, healthy.url],
  );
  await client.query(
    `insert into webhook_endpoints (user_id, url, events, secret)
     select $1, $2 || '/' || g, '{task.created}', ${SECRET_SQL} from generate_series(1, 10) g`,
    [noisy, hanging.url],
  );
  const worker = await startRole('worker', database.url, 'worker started', workerEnv);
  const create = (userId: number | undefined) =>
    client.query(
      `insert into tasks (user_id, title, job_id, due_at) values ($1, 'neighbour', gen_random_uuid(), now() + interval '1 hour')`,
      [userId],
    );
  let sent = 0;
  const until = Date.now() + NEIGHBOUR_SECONDS * 1000;
  for (let tick = 0; Date.now() < until; tick++) {
    if (slow) await create(noisy);
    if (tick % 10 === 0) {
      await create(good);
      sent++;
    }
    await sleep(100);
  }
  const deadline = Date.now() + 15_000;
  while (healthy.arrivals.size < sent && Date.now() < deadline) await sleep(100);
  await client.end();
  await worker.stop();
  await database.stop();
  await healthy.close();
  await hanging.close();
  const latency = [...healthy.arrivals.values()].map((arrival) => arrival.at - arrival.createdAt).sort((a, b) => a - b);
  const at = (q: number) => latency[Math.min(latency.length - 1, Math.floor(q * latency.length))] ?? Number.NaN;
  return {
    p50: at(0.5),
    p99: at(0.99),
    max: latency.at(-1) ?? Number.NaN,
    lost: sent - latency.length,
    hangingAttempts: hanging.requests,
  };
}

/** POST /tasks/s at concurrency 16 for 3 s, by a user with no endpoint and by one with an endpoint. */
async function creates() {
  const receiver = await startReceiver();
  const database = await benchDatabase('task_manager_bench_deliveries', log);
  const client = new pg.Client(database.url);
  await client.connect();
  const { rows: users } = await client.query<{ id: string }>(
    `insert into users (email, password_hash) values ('plain@example.com', 'x'), ('hooked@example.com', 'x')
     returning id`,
  );
  const [plain, hooked] = users.map((user) => Number(user.id));
  await client.query(
    `insert into webhook_endpoints (user_id, url, events, secret)
     values ($1, $2, '{task.created,task.completed}', 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0')`,
    [hooked, receiver.url],
  );
  await client.end();
  const worker = await startRole('worker', database.url, 'worker started', workerEnv);
  const web = await startRole('web', database.url, 'listening on');
  const rate = async (userId: number) => {
    const token = signToken({ id: userId, role: 'user' }, { secret: BENCH_JWT_SECRET, expiresInSeconds: 3600 });
    const result = await autocannon({
      url: `http://127.0.0.1:${web.port}/tasks`,
      method: 'POST',
      connections: 16,
      duration: 3,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'bench', delay_seconds: 3600 }),
    });
    return result.requests.average;
  };
  const without: number[] = [];
  const withOne: number[] = [];
  for (let round = 0; round < rounds + 1; round++) {
    progress(`creates, round ${round + 1} of ${rounds + 1}`);
    without.push(await rate(plain ?? 0));
    withOne.push(await rate(hooked ?? 0));
  }
  progress('');
  await web.stop();
  await worker.stop();
  await database.stop();
  await receiver.close();
  return { withoutEndpoint: median(without), withEndpoint: median(withOne), deliveredMeanwhile: receiver.requests };
}

const plain: number[] = [];
const hooked: Awaited<ReturnType<typeof drain>>[] = [];
const busy: Awaited<ReturnType<typeof drain>>[] = [];
const alone: Awaited<ReturnType<typeof neighbour>>[] = [];
const beside: Awaited<ReturnType<typeof neighbour>>[] = [];
for (let round = 0; round < rounds; round++) {
  progress(`drain without endpoints, round ${round + 1} of ${rounds}`);
  plain.push((await drain('none')).completionsPerSecond);
  progress(`drain with one endpoint per user, round ${round + 1} of ${rounds}`);
  hooked.push(await drain('endpoints'));
  progress(`drain with one endpoint per user and a neighbour whose 10 endpoints hang, round ${round + 1} of ${rounds}`);
  busy.push(await drain('busy'));
  progress(`a healthy user's deliveries alone, round ${round + 1} of ${rounds}`);
  alone.push(await neighbour(false));
  progress(`a healthy user's deliveries beside a noisy neighbour, round ${round + 1} of ${rounds}`);
  beside.push(await neighbour(true));
}
progress('');
const pick = (
  results: Awaited<ReturnType<typeof drain>>[],
  key: 'completionsPerSecond' | 'deliveriesPerSecond' | 'p50' | 'p99' | 'lost' | 'duplicates',
) => median(results.map((result) => (result as Record<string, number>)[key] ?? Number.NaN));
const of = (
  results: Awaited<ReturnType<typeof neighbour>>[],
  key: 'p50' | 'p99' | 'max' | 'lost' | 'hangingAttempts',
) => median(results.map((result) => result[key]));
const created = await creates();

const figures = {
  tasks: total,
  drainWithoutEndpoints: median(plain),
  drainWithEndpoints: pick(hooked, 'completionsPerSecond'),
  drainWithBusyNeighbour: pick(busy, 'completionsPerSecond'),
  drainRatioWithEndpoints: median(hooked.map((result, i) => result.completionsPerSecond / (plain[i] ?? Number.NaN))),
  drainRatioWithBusyNeighbour: median(busy.map((result, i) => result.completionsPerSecond / (plain[i] ?? Number.NaN))),
  deliveriesPerSecond: pick(hooked, 'deliveriesPerSecond'),
  p50Ms: pick(hooked, 'p50'),
  p99Ms: pick(hooked, 'p99'),
  busyP50Ms: pick(busy, 'p50'),
  busyP99Ms: pick(busy, 'p99'),
  lost: Math.max(...[...hooked, ...busy].map((result) => ('lost' in result ? result.lost : 0))),
  duplicates: pick(hooked, 'duplicates'),
  neighbourSeconds: NEIGHBOUR_SECONDS,
  healthyAloneP50Ms: of(alone, 'p50'),
  healthyAloneP99Ms: of(alone, 'p99'),
  healthyBesideP50Ms: of(beside, 'p50'),
  healthyBesideP99Ms: of(beside, 'p99'),
  healthyBesideMaxMs: Math.max(...beside.map((result) => result.max)),
  healthyLost: Math.max(...[...alone, ...beside].map((result) => result.lost)),
  hangingAttempts: of(beside, 'hangingAttempts'),
  createsWithoutEndpoint: created.withoutEndpoint,
  createsWithEndpoint: created.withEndpoint,
};
const ms = (value: number) => value.toFixed(0);
console.log(`
Webhooks: ${total} tasks of ${USERS} users due within ${SPREAD_MS / 1000} s, one worker process, one endpoint per user on a local receiver (${rounds} interleaved rounds, medians)

| figure | value |
|---|---|
| drain without endpoints, completions/s | ${ms(figures.drainWithoutEndpoints)} |
| drain with one endpoint per user, completions/s (against without) | ${ms(figures.drainWithEndpoints)} (${figures.drainRatioWithEndpoints.toFixed(2)}) |
| the same beside a neighbour whose 10 endpoints hang 30 s, completions/s (against without; goal >= 0.9) | ${ms(figures.drainWithBusyNeighbour)} (${figures.drainRatioWithBusyNeighbour.toFixed(2)}) |
| deliveries/s (first to last arrival) | ${ms(figures.deliveriesPerSecond)} |
| from completed_at to the receiver, p50 / p99 ms (beside the busy neighbour) | ${ms(figures.p50Ms)} / ${ms(figures.p99Ms)} (${ms(figures.busyP50Ms)} / ${ms(figures.busyP99Ms)}) |
| deliveries lost (worst round) / duplicate requests | ${figures.lost} / ${figures.duplicates} |
| noisy neighbour (${NEIGHBOUR_SECONDS} s): a healthy user's created-to-arrival p50 / p99 ms, alone | ${ms(figures.healthyAloneP50Ms)} / ${ms(figures.healthyAloneP99Ms)} |
| the same beside a user creating 10 tasks/s for 10 endpoints that hang 30 s (max) | ${ms(figures.healthyBesideP50Ms)} / ${ms(figures.healthyBesideP99Ms)} (${ms(figures.healthyBesideMaxMs)}) |
| the healthy user's deliveries lost / attempts the hanging endpoints received | ${figures.healthyLost} / ${figures.hangingAttempts} |
| POST /tasks/s at concurrency 16, a user with no endpoint / with one | ${ms(figures.createsWithoutEndpoint)} / ${ms(figures.createsWithEndpoint)} |
`);
await writeReport('deliveries', figures);
