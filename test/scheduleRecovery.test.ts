/**
 * Schedules through outages and crashes: missed times are skipped and counted (never a burst), a schedule
 * that lost its occurrence is repaired by the reconciliation, and kill -9 of the worker during a burst of
 * occurrences neither loses a schedule nor forks it.
 */
import test from 'ava';
import { Cron } from 'croner';
import { query } from './helpers/db.ts';
import { eventually, spawnService } from './helpers/process.ts';
import { signUp, startService, startWorkerService, TEST_SECRET } from './helpers/service.ts';

type Occurrence = { id: number; status: string; due_at: Date; completed_at: Date | null };
const occurrencesOf = (url: string, scheduleId: number) =>
  query<Occurrence>(url, 'select id::int, status, due_at, completed_at from tasks where schedule_id = $1 order by id', [
    scheduleId,
  ]);
const sleepUntil = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - Date.now())));

test('no worker across three occurrences: the first completes once, late; the times between are skipped and counted; the next is ahead', async (t) => {
  const web = await startService({ minScheduleIntervalSeconds: 1 }); // HTTP only: no worker yet
  t.teardown(() => web.stop());
  const { token } = await signUp(web.api);
  const schedule = (await web.api.post('/schedules', { title: 'every 3 s', cron: '*/3 * * * * *' }, token)).body;
  const first = Date.parse(schedule.next_due_at);
  await sleepUntil(first + 6_300); // its time and the next two pass with no worker

  const worker = await startWorkerService(web.databaseUrl);
  t.teardown(() => worker.stop());
  const late = await eventually(async () => {
    const rows = await occurrencesOf(web.databaseUrl, schedule.id);
    return rows.some((row) => row.status === 'completed') && rows;
  }, 10_000);
  const [completed, next, ...more] = late;
  t.is(completed?.due_at.getTime(), first);
  t.deepEqual(more, [], 'one late completion, no burst of catch-ups');
  const completedAt = completed?.completed_at?.getTime() ?? 0;
  // What the cron says lies between: every time after the first, up to the completion.
  const cron = new Cron('*/3 * * * * *', { timezone: 'UTC' });
  const between = cron.nextRuns(10, new Date(first)).filter((date) => date.getTime() <= completedAt);
  const after = (await web.api.get(`/schedules/${schedule.id}`, token)).body;
  t.true(between.length >= 2);
  t.is(
    after.skipped,
    between.length,
    `skipped the ${between.length} times before ${new Date(completedAt).toISOString()}`,
  );
  t.is(next?.status, 'pending');
  t.is(next?.due_at.getTime(), cron.nextRun(new Date(completedAt))?.getTime(), 'the first cron time after now');
  t.is(after.next_task_id, next?.id);
});

test('the reconciliation gives an active schedule that lost its occurrence (an operator deleted it) its next one', async (t) => {
  const service = await startService({ worker: true, reconcileIntervalSeconds: 1 });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const schedule = (await service.api.post('/schedules', { title: 'hourly', cron: '0 * * * *' }, token)).body;
  await query(service.databaseUrl, 'delete from tasks where id = $1', [schedule.next_task_id]);
  const repaired = await eventually(async () => {
    const now = (await service.api.get(`/schedules/${schedule.id}`, token)).body;
    return now.next_task_id !== null && now;
  }, 10_000);
  t.not(repaired.next_task_id, schedule.next_task_id);
  t.is(repaired.next_due_at, schedule.next_due_at, 'the same cron time: nothing skipped');
  t.is(repaired.skipped, 0);
  const jobs = await query<{ state: string }>(
    service.databaseUrl,
    `select j.state from pgboss.job j join tasks t on t.job_id = j.id where t.id = $1`,
    [repaired.next_task_id],
  );
  t.deepEqual(jobs, [{ state: 'created' }]);
});

test('kill -9 of the worker during a burst of occurrences loses no schedule and forks none', async (t) => {
  t.timeout(90_000);
  const web = await startService({ minScheduleIntervalSeconds: 1 });
  t.teardown(() => web.stop());
  const { token } = await signUp(web.api);
  const ids: number[] = [];
  for (let i = 0; i < 20; i++) {
    ids.push((await web.api.post('/schedules', { title: `burst ${i}`, cron: '* * * * * *' }, token)).body.id);
  }
  const env = {
    DATABASE_URL: web.databaseUrl,
    JWT_SECRET: TEST_SECRET,
    WORKER_POLL_INTERVAL_SECONDS: '0.5',
    RECONCILE_INTERVAL_SECONDS: '3600',
  };
  const first = spawnService('worker', env);
  t.teardown(() => first.child.kill('SIGKILL'));
  // Occurrences complete every second, each writing the next: kill the worker in the middle of it.
  await eventually(async () => {
    const [row] = await query<{ n: number }>(
      web.databaseUrl,
      `select count(*)::int n from tasks where schedule_id = any($1::bigint[]) and status = 'completed'`,
      [ids],
    );
    return (row?.n ?? 0) >= 40;
  }, 20_000);
  first.child.kill('SIGKILL');
  await first.exited;

  const invariants = async () => {
    const rows = await query<{ schedule_id: number; pending: number; times: number; occurrences: number }>(
      web.databaseUrl,
      `select schedule_id::int, count(*) filter (where status = 'pending')::int as pending,
              count(distinct due_at)::int as times, count(*)::int as occurrences
       from tasks where schedule_id = any($1::bigint[]) group by schedule_id order by schedule_id`,
      [ids],
    );
    t.is(rows.length, ids.length, 'every schedule has occurrences');
    for (const row of rows) {
      t.is(row.pending, 1, `schedule ${row.schedule_id}: exactly one pending occurrence`);
      t.is(row.times, row.occurrences, `schedule ${row.schedule_id}: never two occurrences for one cron time`);
    }
    return rows;
  };
  const atKill = await invariants();

  // A new worker takes over (jobs claimed by the dead one after their heartbeat): every schedule goes on.
  const second = spawnService('worker', env);
  t.teardown(() => second.child.kill('SIGKILL'));
  await eventually(async () => {
    const rows = await query<{ schedule_id: number; completed: number }>(
      web.databaseUrl,
      `select schedule_id::int, count(*) filter (where status = 'completed')::int as completed
       from tasks where schedule_id = any($1::bigint[]) group by schedule_id`,
      [ids],
    );
    const before = new Map(atKill.map((row) => [row.schedule_id, row.occurrences - 1]));
    return rows.every((row) => row.completed >= (before.get(row.schedule_id) ?? 0) + 2);
  }, 40_000);
  second.child.kill('SIGKILL');
  await second.exited;
  await invariants();
});
