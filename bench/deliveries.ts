/**
 * Webhooks: BENCH_DELIVERY_TASKS (default 2,000) tasks of 10 users come due within 2 s, and a worker
 * process (started as the Procfile starts it) completes them. With one endpoint per user on a receiver
 * here (127.0.0.1), every completion is delivered: deliveries/s (first to last arrival), the time from the
 * task's `completed_at` (its completion's transaction) to the receiver, p50/p99, and how many were lost.
 * Beside it, the same drain with no endpoint at all: completions/s of both (what the relay costs the
 * drain). Then POST /tasks through a web process (autocannon, concurrency 16, 3 s) by a user with no
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
import { startBoss } from '../src/jobs/queue.ts';
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

/** A receiver that answers 204 at once and notes when each delivery (by webhook-id) first arrived. */
async function startReceiver() {
  const arrivals = new Map<string, { at: number; completedAt: number }>();
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
        arrivals.set(id, { at: Date.now(), completedAt: Date.parse(JSON.parse(body).data.completed_at) });
      }
      response.writeHead(204).end();
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
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** A fresh database: USERS users (each with one endpoint when `receiver`), and `total` tasks due soon. */
async function seeded(receiver: Receiver | null) {
  const database = await benchDatabase('task_manager_bench_deliveries', log);
  const client = new pg.Client(database.url);
  await client.connect();
  await client.query(
    `insert into users (email, password_hash) select 'd' || g || '@example.com', 'x' from generate_series(1, $1) g`,
    [USERS],
  );
  if (receiver) {
    await client.query(
      `insert into webhook_endpoints (user_id, url, events, secret)
       select id, $1, '{task.completed}', 'whsec_' || encode(decode(md5(random()::text) || md5(random()::text), 'hex'), 'base64') from users`,
      [receiver.url],
    );
  }
  const tasks = await client.query<{ id: string; job_id: string; due_at: Date }>(
    `insert into tasks (user_id, title, job_id, due_at)
     select (select min(id) from users) + n % $2, 'deliver ' || n, gen_random_uuid(),
            now() + make_interval(secs => $3) + (n * $4 / $1) * interval '1 millisecond'
     from generate_series(1, $1) n returning id, job_id, due_at`,
    [total, USERS, DUE_IN_SECONDS, SPREAD_MS],
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

/** One drain, with or without endpoints: completions/s, and (with) the deliveries' figures. */
async function drain(withEndpoints: boolean) {
  const receiver = withEndpoints ? await startReceiver() : null;
  const database = await seeded(receiver);
  const worker = await startRole('worker', database.url, 'worker started', workerEnv);
  const client = new pg.Client(database.url);
  await client.connect();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { rows } = await client.query<{ left: number }>(
      `select count(*)::int as left from tasks where status = 'pending'`,
    );
    const delivered = receiver ? receiver.arrivals.size : total;
    if ((rows[0]?.left === 0 && delivered === total) || Date.now() > deadline) break;
    await sleep(100);
  }
  const { rows } = await client.query<{ seconds: number }>(
    `select extract(epoch from max(completed_at) - min(completed_at))::float8 as seconds from tasks`,
  );
  await client.end();
  await worker.stop();
  await database.stop();
  await receiver?.close();
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
    lost: total - arrivals.length,
    duplicates: receiver.requests - arrivals.length,
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
for (let round = 0; round < rounds; round++) {
  progress(`drain without endpoints, round ${round + 1} of ${rounds}`);
  plain.push((await drain(false)).completionsPerSecond);
  progress(`drain with one endpoint per user, round ${round + 1} of ${rounds}`);
  hooked.push(await drain(true));
}
progress('');
const pick = (key: 'completionsPerSecond' | 'deliveriesPerSecond' | 'p50' | 'p99' | 'lost' | 'duplicates') =>
  median(hooked.map((result) => (result as Record<string, number>)[key] ?? Number.NaN));
const created = await creates();

const figures = {
  tasks: total,
  drainWithoutEndpoints: median(plain),
  drainWithEndpoints: pick('completionsPerSecond'),
  deliveriesPerSecond: pick('deliveriesPerSecond'),
  p50Ms: pick('p50'),
  p99Ms: pick('p99'),
  lost: Math.max(...hooked.map((result) => ('lost' in result ? result.lost : 0))),
  duplicates: pick('duplicates'),
  createsWithoutEndpoint: created.withoutEndpoint,
  createsWithEndpoint: created.withEndpoint,
};
console.log(`
Webhooks: ${total} tasks of ${USERS} users due within ${SPREAD_MS / 1000} s, one worker process, one endpoint per user on a local receiver (${rounds} interleaved rounds, medians)

| figure | value |
|---|---|
| drain without endpoints, completions/s | ${figures.drainWithoutEndpoints.toFixed(0)} |
| drain with one endpoint per user, completions/s | ${figures.drainWithEndpoints.toFixed(0)} |
| deliveries/s (first to last arrival) | ${figures.deliveriesPerSecond.toFixed(0)} |
| from completed_at to the receiver, p50 / p99 ms | ${figures.p50Ms.toFixed(0)} / ${figures.p99Ms.toFixed(0)} |
| deliveries lost (worst round) / duplicate requests | ${figures.lost} / ${figures.duplicates} |
| POST /tasks/s at concurrency 16, a user with no endpoint / with one | ${figures.createsWithoutEndpoint.toFixed(0)} / ${figures.createsWithEndpoint.toFixed(0)} |
`);
await writeReport('deliveries', figures);
