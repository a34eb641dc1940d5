import test from 'ava';
import { PgBoss } from 'pg-boss';
import { COMPLETE_TASK } from '../src/db/queues.ts';
import { completeTasks } from '../src/domain/tasks/completion.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { query } from './helpers/db.ts';
import { completedIds, eventually } from './helpers/process.ts';
import { signUp, startService, startWorkerService } from './helpers/service.ts';

/** A logger whose JSON lines land in `lines`, as a worker process would print them. */
function capturedLogger() {
  const lines: Record<string, any>[] = [];
  const log = createLogger({ LOG_LEVEL: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

/** A worker as `npm run worker` runs it, on this database, logging into `lines`. */
async function startWorkerProcessLike(url: string) {
  const { log, lines } = capturedLogger();
  const worker = await startWorkerService(url, { poolSize: 3, log });
  return { lines, stop: worker.stop };
}

type TaskRow = { id: number; status: string; job_id: string; completed_at: Date | null };
const tasksOf = (url: string, ids: number[]) =>
  query<TaskRow>(url, 'select id::int, status, job_id, completed_at from tasks where id = any($1) order by id', [ids]);
const allCompleted = (url: string, ids: number[], timeoutMs: number) =>
  eventually(async () => {
    const rows = await tasksOf(url, ids);
    return rows.every((row) => row.status === 'completed') && rows;
  }, timeoutMs);

/** Waits until `count` completion jobs have come due (a fetch now claims them). */
const jobsDue = (url: string, count: number) =>
  eventually(async () => {
    const [row] = await query<{ n: number }>(
      url,
      `select count(*)::int as n from pgboss.job where name = 'complete-task' and state = 'created' and start_after <= now()`,
    );
    return row?.n === count;
  }, 10_000);

test('jobs claimed by a worker that dies are taken over in about 15 s, and each task completes once', async (t) => {
  const web = await startService({ delaySeconds: 1 });
  t.teardown(() => web.stop());
  const { token } = await signUp(web.api);
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) ids.push((await web.api.post('/tasks', { title: `claimed ${i}` }, token)).body.id);
  await jobsDue(web.databaseUrl, 5);

  // A worker claims the due jobs, then dies: no completion, no heartbeat, no goodbye.
  const doomed = new PgBoss({ connectionString: web.databaseUrl, schema: 'pgboss', supervise: false, schedule: false });
  await doomed.start();
  const claimed = await doomed.fetch(COMPLETE_TASK, { batchSize: 10 });
  const claimedAt = Date.now();
  t.is(claimed.length, 5);
  await doomed.stop({ graceful: false });
  const states = await query<{ state: string }>(web.databaseUrl, 'select distinct state from pgboss.job');
  t.deepEqual(states, [{ state: 'active' }], 'the dead worker still holds them');

  const worker = await startWorkerProcessLike(web.databaseUrl);
  t.teardown(() => worker.stop());
  await allCompleted(web.databaseUrl, ids, 45_000);
  const took = Date.now() - claimedAt;
  t.log(`tasks of the dead worker completed ${took} ms after the claim`);
  t.true(took < 25_000, `took ${took} ms`);
  t.deepEqual(
    completedIds(worker.lines).sort((a, b) => a - b),
    ids,
    'each task completed exactly once',
  );
});

test('a worker that dies after completing its tasks, before pg-boss completes their jobs: the retried jobs complete and change nothing', async (t) => {
  const web = await startService({ delaySeconds: 1 });
  t.teardown(() => web.stop());
  const { token } = await signUp(web.api);
  const ids: number[] = [];
  for (let i = 0; i < 3; i++) ids.push((await web.api.post('/tasks', { title: `half done ${i}` }, token)).body.id);
  await jobsDue(web.databaseUrl, 3);

  // A worker claims the due jobs, runs the batch's statement (committed), then dies before pg-boss's complete.
  const doomed = new PgBoss({ connectionString: web.databaseUrl, schema: 'pgboss', supervise: false, schedule: false });
  await doomed.start();
  const claimed = await doomed.fetch(COMPLETE_TASK, { batchSize: 10 });
  t.is(claimed.length, 3);
  const done = await completeTasks(
    { boss: doomed, parkBeyondSeconds: 600 },
    claimed.map((job) => job.id),
  );
  t.deepEqual(
    done.map((task) => task.id).sort((a, b) => a - b),
    ids,
  );
  await doomed.stop({ graceful: false });
  const before = await tasksOf(web.databaseUrl, ids);
  t.true(before.every((row) => row.status === 'completed'));

  const worker = await startWorkerProcessLike(web.databaseUrl);
  t.teardown(() => worker.stop());
  const jobs = await eventually(async () => {
    const rows = await query<{ state: string; retry_count: number }>(
      web.databaseUrl,
      'select state, retry_count from pgboss.job where name = $1 and id = any($2)',
      [COMPLETE_TASK, before.map((row) => row.job_id)],
    );
    return rows.length === 3 && rows.every((row) => row.state === 'completed') && rows;
  }, 40_000);
  t.true(
    jobs.every((job) => job.retry_count >= 1),
    'each job was retried after the dead worker',
  );
  t.deepEqual(await tasksOf(web.databaseUrl, ids), before, 'the retries changed no task');
  t.deepEqual(completedIds(worker.lines), [], 'and completed none a second time');
});

test('a completion is logged only after its transaction commits', async (t) => {
  const web = await startService({ delaySeconds: 1 });
  t.teardown(() => web.stop());
  // A deferred trigger refuses the commit of this task's completion, after the UPDATE itself succeeded.
  await query(
    web.databaseUrl,
    `create function refuse_commit() returns trigger language plpgsql as $$
     begin raise exception 'the commit is refused for this test'; end $$`,
  );
  await query(
    web.databaseUrl,
    `create constraint trigger refuse_completion after update on tasks deferrable initially deferred
     for each row when (new.status = 'completed' and new.title = 'cannot commit') execute function refuse_commit()`,
  );
  const { token } = await signUp(web.api);
  const refused = (await web.api.post('/tasks', { title: 'cannot commit' }, token)).body.id as number;
  const worker = await startWorkerProcessLike(web.databaseUrl);
  t.teardown(() => worker.stop());

  await eventually(async () => worker.lines.some((line) => line.msg?.startsWith('task completion failed')), 15_000);
  t.deepEqual(completedIds(worker.lines), [], 'no completion is logged for a transaction that rolled back');
  t.is((await tasksOf(web.databaseUrl, [refused]))[0]?.status, 'pending');

  await query(web.databaseUrl, 'drop trigger refuse_completion on tasks');
  await allCompleted(web.databaseUrl, [refused], 20_000);
  await eventually(async () => completedIds(worker.lines).length > 0, 5_000);
  t.deepEqual(completedIds(worker.lines), [refused], 'logged once, when it committed');
});

test('pg-boss errors are logged without the pg client and its cancel key', async (t) => {
  const web = await startService();
  t.teardown(() => web.stop());
  const { log, lines } = capturedLogger();
  const boss = await startBoss({ url: web.databaseUrl, log, role: 'migrate', poolSize: 2 });
  t.teardown(() => boss.stop({ graceful: false }));
  // Idle connections killed by the server: pg-pool reports each with `err.client` attached.
  await query(
    web.databaseUrl,
    `select pg_terminate_backend(pid) from pg_stat_activity
     where application_name = 'task-manager-migrate' and datname = current_database()`,
  );
  const logged = await eventually(async () => lines.find((line) => line.msg === 'pg-boss error'), 10_000);
  const text = JSON.stringify(logged);
  t.notRegex(text, /secretKey"\s*:\s*-?\d/);
  t.notRegex(text, /"password"\s*:\s*"(?!\[redacted\])/);
  t.is(logged.err.client, '[connection]');
  t.regex(logged.err.message, /terminat/i);
});

test('a pending task whose job was purged, or failed for good, is rescheduled and completes', async (t) => {
  const web = await startService({ delaySeconds: 1 });
  t.teardown(() => web.stop());
  const { token } = await signUp(web.api);
  const create = async (title: string) => (await web.api.post('/tasks', { title }, token)).body;
  const purged = await create('job purged');
  const failed = await create('job failed');
  const healthy = await create('job fine');
  await query(web.databaseUrl, 'delete from pgboss.job where id = $1', [purged.job_id]);
  await query(web.databaseUrl, `update pgboss.job set state = 'failed' where id = $1`, [failed.job_id]);

  const worker = await startWorkerProcessLike(web.databaseUrl);
  t.teardown(() => worker.stop());
  const rows = await allCompleted(web.databaseUrl, [purged.id, failed.id, healthy.id], 15_000);
  const rescheduled = worker.lines.filter((line) => line.msg?.startsWith('rescheduled a pending task'));
  t.deepEqual(
    rescheduled.map((line) => [line.taskId, line.lostJobId]),
    [
      [purged.id, purged.job_id],
      [failed.id, failed.job_id],
    ],
  );
  t.not(rows[0]?.job_id, purged.job_id);
  t.is(rows[2]?.job_id, healthy.job_id, 'a task with a live job is left alone');
  t.deepEqual(
    completedIds(worker.lines).sort((a, b) => a - b),
    [purged.id, failed.id, healthy.id],
  );
  const jobs = await query<{ state: string; n: number }>(
    web.databaseUrl,
    `select state, count(*)::int n from pgboss.job where id = any($1) group by state`,
    [rows.map((row) => row.job_id)],
  );
  t.deepEqual(jobs, [{ state: 'completed', n: 3 }]);
});
