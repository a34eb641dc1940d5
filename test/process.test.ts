import test from 'ava';
import { createTestDatabase, query } from './helpers/db.ts';
import { completedIds, eventually, listeningUrl, type ServiceProcess, spawnService } from './helpers/process.ts';
import { client, signUp, startService, TEST_SECRET } from './helpers/service.ts';

const serviceEnv = (databaseUrl: string, extra: Record<string, string> = {}) => ({
  DATABASE_URL: databaseUrl,
  RATE_LIMIT_AUTH_PER_MINUTE: '1000',
  JWT_SECRET: TEST_SECRET,
  TASK_COMPLETION_DELAY_SECONDS: '3',
  WORKER_POLL_INTERVAL_SECONDS: '2',
  ...extra,
});

type TaskRow = { id: number; status: string; due_at: Date; completed_at: Date | null };
const allTasks = (url: string) =>
  query<TaskRow>(url, 'select id::int, status, due_at, completed_at from tasks order by id');
/** Every task, once all of them are completed. */
const allCompleted = (url: string, timeoutMs: number) =>
  eventually(async () => {
    const rows = await allTasks(url);
    return rows.every((task) => task.status === 'completed') && rows;
  }, timeoutMs);

/**
 * A worker logs a batch after the batch commits: waits (10 s at most) until the services' lines report
 * `count` completions, so that a check of those lines reads them all (and sees any extra ones).
 */
const loggedCompletions = (services: ServiceProcess[], count: number) =>
  eventually(
    async () => services.reduce((sum, service) => sum + completedIds(service.lines).length, 0) >= count,
    10_000,
  ).catch(() => undefined);

test('kill -9 of the whole service with tasks pending: after a restart every task completes, once', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  // Due 10 s after their creation: the 20 creates took over 3 s beside another suite, and the first task
  // then completed before the kill.
  const first = spawnService('all', serviceEnv(database.url, { TASK_COMPLETION_DELAY_SECONDS: '10' }));
  const api = client(await listeningUrl(first));
  const { token } = await signUp(api);
  for (let i = 0; i < 20; i++) t.is((await api.post('/tasks', { title: `durable ${i}` }, token)).status, 201);
  first.child.kill('SIGKILL');
  t.is((await first.exited).signal, 'SIGKILL');
  t.true(
    (await allTasks(database.url)).every((task) => task.status === 'pending'),
    'nothing completed before the kill',
  );

  const second = spawnService('all', serviceEnv(database.url));
  t.teardown(() => second.child.kill('SIGKILL'));
  await listeningUrl(second);
  const restarted = Date.now();
  const tasks = await allCompleted(database.url, 20_000);
  t.is(tasks.length, 20);
  // Late from its due time, or from the restart when that came after it (a loaded machine starts slowly).
  const worstLateness = Math.max(
    ...tasks.map((task) => (task.completed_at?.getTime() ?? 0) - Math.max(task.due_at.getTime(), restarted)),
  );
  t.log(`worst lateness after the restart: ${worstLateness} ms`);
  t.true(worstLateness < 5_000, `a task completed ${worstLateness} ms after its due time and the restart`);
  await loggedCompletions([first, second], 20);
  const reported = completedIds([...first.lines, ...second.lines]);
  t.deepEqual(
    [...reported].sort((a, b) => a - b),
    tasks.map((task) => task.id),
    'each task completed exactly once',
  );
});

test('two worker processes over 200 due tasks complete each exactly once', async (t) => {
  const web = await startService({ delaySeconds: 1 }); // HTTP only: no worker in this process
  t.teardown(() => web.stop());
  const { token } = await signUp(web.api);
  for (let i = 0; i < 200; i += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, j) => web.api.post('/tasks', { title: `t${i + j}` }, token)));
  }
  const workers = [1, 2].map(() => spawnService('worker', serviceEnv(web.databaseUrl, { WORKER_BATCH_SIZE: '10' })));
  t.teardown(() => {
    for (const worker of workers) worker.child.kill('SIGKILL');
  });
  const tasks = await allCompleted(web.databaseUrl, 30_000);
  t.is(tasks.length, 200);
  await loggedCompletions(workers, 200);
  const perWorker = workers.map((worker) => completedIds(worker.lines));
  t.log(`completions per worker: ${perWorker.map((ids) => ids.length).join(' + ')}`);
  const all = perWorker.flat().sort((a, b) => a - b);
  t.deepEqual(
    all,
    tasks.map((task) => task.id),
    'every task exactly once across both workers',
  );
  const jobs = await query<{ state: string; n: number }>(
    web.databaseUrl,
    `select state, count(*)::int n from pgboss.job where name = 'complete-task' group by state`,
  );
  t.deepEqual(jobs, [{ state: 'completed', n: 200 }]);
});

test('SIGTERM: the service stops taking requests, finishes, and exits 0 within 10 s', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const service = spawnService('all', serviceEnv(database.url));
  const url = await listeningUrl(service);
  t.is((await fetch(`${url}/healthz`)).status, 200);
  const started = Date.now();
  service.child.kill('SIGTERM');
  const { code } = await service.exited;
  t.is(code, 0);
  t.true(Date.now() - started < 10_000);
  await t.throwsAsync(fetch(`${url}/healthz`));
});

test('SIGTERM to `npm run web` reaches the service: it exits 0 and leaves no process behind', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const npm = spawnService('web', serviceEnv(database.url), 'npm');
  const url = await listeningUrl(npm);
  const servicePid: number = npm.lines.find((line) => line.msg?.startsWith('listening on'))?.pid;
  t.not(servicePid, npm.child.pid, 'the service runs in a process of its own');
  npm.child.kill('SIGTERM');
  t.is((await npm.exited).code, 0);
  await eventually(async () => {
    try {
      process.kill(servicePid, 0);
      return false;
    } catch {
      return true; // gone
    }
  }, 10_000);
  await t.throwsAsync(fetch(`${url}/healthz`));
});

test('a bad configuration stops the start with one clear line per variable', async (t) => {
  const service = spawnService('web', {
    NODE_ENV: 'production',
    JWT_SECRET: 'short',
    PORT: 'eighty',
    TASK_COMPLETION_DELAY_SECONDS: '0',
  });
  const { code } = await service.exited;
  t.is(code, 1);
  const output = service.lines.map((line) => line.text ?? '').join('\n');
  t.regex(output, /DATABASE_URL: is required in production/);
  t.regex(output, /JWT_SECRET: must be at least 32 characters/);
  t.regex(output, /PORT: /);
  t.regex(output, /TASK_COMPLETION_DELAY_SECONDS: /);
});
