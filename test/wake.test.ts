/**
 * The worker wakes when a job comes due, not at its next poll. Every worker here polls once a minute,
 * so a task completed within about a second of its due time was woken by the timer.
 */
import { randomUUID } from 'node:crypto';
import test from 'ava';
import { withApplicationName } from '../src/db/applicationName.ts';
import { COMPLETE_TASK } from '../src/db/queues.ts';
import type { WakeTimer } from '../src/jobs/wakeTimer.ts';
import { PRODUCTION_TIMING } from '../src/timing.ts';
import { createTestDatabase, query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { signUp, startService, startWorkerService, type TestService } from './helpers/service.ts';

const PARK_BEYOND_SECONDS = PRODUCTION_TIMING.parkBeyondSeconds;

const POLL_SECONDS = 60;

/** A worker that polls once a minute (only its wake timer completes a task on time), stopped at teardown. */
async function startSlowWorker(t: { teardown(fn: () => unknown): void }, url: string, listenUrl = url) {
  const worker = await startWorkerService(url, { pollIntervalSeconds: POLL_SECONDS, listenUrl });
  t.teardown(worker.stop);
  return worker;
}

/**
 * Waits until the timer is armed for `dueAt` (ISO): it has read that task's due time as the next one. The
 * due time it read is compared, not the instant it worked out from it: on a loaded machine (two suites side
 * by side) the answer can reach the timer well after the database read its clock.
 */
const armedFor = (wake: WakeTimer, dueAt: string) =>
  eventually(async () => wake.state().nextDueAt === Date.parse(dueAt), 15_000);

/** Two web processes on one database, one scheduling 60 s ahead and one 1 s ahead, and a slow-polling worker. */
async function setUp(t: { teardown(fn: () => unknown): void }) {
  const far = await startService({ delaySeconds: 60 });
  t.teardown(() => far.stop());
  const near = await startService({ delaySeconds: 1, databaseUrl: far.databaseUrl });
  t.teardown(() => near.stop());
  const { wake } = await startSlowWorker(
    t,
    far.databaseUrl,
    withApplicationName(far.databaseUrl, 'wake-timer-under-test'),
  );
  const { token } = await signUp(far.api);
  return { far, near, token, wake };
}

type Row = { status: string; due_at: Date; completed_at: Date | null };
const lateness = (service: TestService, id: number) =>
  eventually(async () => {
    const [row] = await query<Row>(
      service.databaseUrl,
      'select status, due_at, completed_at from tasks where id = $1',
      [id],
    );
    return row?.completed_at ? row.completed_at.getTime() - row.due_at.getTime() : undefined;
  }, 15_000);

test('a task scheduled before the one the timer waits for wakes the worker at its own due time', async (t) => {
  const { far, near, token, wake } = await setUp(t);
  const later = (await far.api.post('/tasks', { title: 'in a minute' }, token)).body;
  await armedFor(wake, later.due_at);
  const sooner = (await near.api.post('/tasks', { title: 'in a second' }, token)).body;
  const late = await lateness(near, sooner.id);
  t.log(`completed ${late} ms after due_at, with a ${POLL_SECONDS} s poll`);
  t.true(late >= 0 && late < 1_000, `${late} ms`);
  t.is((await far.api.get(`/tasks/${later.id}`, token)).body.status, 'pending');
});

test('a deleted task only wakes the worker early: the next one still completes on time', async (t) => {
  const { near, token, wake } = await setUp(t);
  const doomed = (await near.api.post('/tasks', { title: 'deleted before due' }, token)).body;
  await armedFor(wake, doomed.due_at);
  const kept = (await near.api.post('/tasks', { title: 'kept' }, token)).body;
  t.is((await near.api.delete(`/tasks/${doomed.id}`, token)).status, 204);
  const late = await lateness(near, kept.id);
  t.true(late >= 0 && late < 1_000, `${late} ms`);
  t.deepEqual(await query(near.databaseUrl, 'select id from tasks where id = $1', [doomed.id]), []);
});

test('after its LISTEN connection is cut, the timer reads the earliest due time again', async (t) => {
  const { near, token } = await setUp(t);
  const cut = await query<{ n: number }>(
    near.databaseUrl,
    `select count(pg_terminate_backend(pid))::int n from pg_stat_activity
     where application_name = 'wake-timer-under-test' and datname = current_database()`,
  );
  t.is(cut[0]?.n, 1);
  // Created while the listener is away: its notification is lost; the re-read after the reconnect finds it.
  const task = (await near.api.post('/tasks', { title: 'during the cut' }, token)).body;
  const late = await lateness(near, task.id);
  t.log(`completed ${late} ms after due_at`);
  t.true(late >= 0 && late < 2_000, `${late} ms`);
});

test('a job already due when the timer re-reads, as one that fell due during the woken fetch, is fetched at once', async (t) => {
  // The worker alone (no web process), so no notification but the one this test sends wakes anything.
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const { boss, wake, maintained } = await startSlowWorker(t, database.url);
  // The start's reconciliation has run: a pass after the insert below would give the task (due, its job
  // not sent yet) a job of its own and wake the worker for it.
  await maintained();
  const reads = wake.state().reads;
  const jobId = randomUUID();
  const [task] = await query<{ id: number }>(
    database.url,
    `with author as (insert into users (email, password_hash) values ('window@example.com', 'x') returning id)
     insert into tasks (user_id, title, due_at, job_id) select id, 'fell due unseen', now(), $1 from author
     returning id::int`,
    [jobId],
  );
  // The task's own notification has been read (no job waited then), and pg-boss's worker has made its first
  // fetch: its next is a minute away.
  await eventually(async () => wake.state().reads > reads, 5_000);
  t.is(wake.state().nextDueAt, null);
  await eventually(
    async () => boss.getWipData().some((worker) => worker.name === COMPLETE_TASK && worker.lastFetchedOn !== null),
    5_000,
  );
  // The job, due already, sent with no notification: the state a job is in when it fell due between the
  // woken fetch and the timer's re-read.
  await boss.send(COMPLETE_TASK, { taskId: task?.id }, { id: jobId, startAfter: new Date(Date.now() - 1_000) });
  const [before] = await query<{ status: string }>(database.url, 'select status from tasks where id = $1', [task?.id]);
  t.is(before?.status, 'pending', 'nothing fetched it yet: the poll is a minute away');
  const reread = Date.now();
  await query(database.url, `select pg_notify('task_events', '{}')`); // any task event makes the timer re-read
  const completedAt = await eventually(async () => {
    const [row] = await query<{ completed_at: Date | null }>(
      database.url,
      'select completed_at from tasks where id = $1',
      [task?.id],
    );
    return row?.completed_at ?? undefined;
  }, 15_000);
  const waited = completedAt.getTime() - reread;
  t.log(`completed ${waited} ms after the re-read was asked for, with a ${POLL_SECONDS} s poll`);
  t.true(waited < 1_000, `${waited} ms`);
});

test('a job due beyond the horizon waits parked, outside what pg-boss fetches; a worker unparks it in time', async (t) => {
  const web = await startService({ delaySeconds: PARK_BEYOND_SECONDS + 60 });
  t.teardown(() => web.stop());
  const { token } = await signUp(web.api);
  const far = (await web.api.post('/tasks', { title: 'far ahead' }, token)).body;
  const near = (await web.api.post('/tasks', { title: 'near', delay_seconds: PARK_BEYOND_SECONDS - 60 }, token)).body;
  const blocked = async (jobId: string) =>
    (await query<{ blocked: boolean }>(web.databaseUrl, 'select blocked from pgboss.job where id = $1', [jobId]))[0]
      ?.blocked;
  t.true(await blocked(far.job_id), 'parked');
  t.false(await blocked(near.job_id), 'within the horizon: not parked');
  // Time passes: the far task comes within the horizon (3 s from now) while its job is still parked.
  await query(
    web.databaseUrl,
    `with moved as (update tasks set due_at = date_trunc('milliseconds', now() + interval '3 seconds')
                    where id = $1 returning due_at)
     update pgboss.job set start_after = (select due_at from moved) where id = $2`,
    [far.id, far.job_id],
  );
  // A worker starting now (as after a deploy) unparks it at once; its wake timer then waits for it.
  await startSlowWorker(t, web.databaseUrl);
  const late = await lateness(web, far.id);
  t.log(`completed ${late} ms after due_at, with a ${POLL_SECONDS} s poll`);
  t.true(late >= 0 && late < 1_000, `${late} ms`);
  t.false(await blocked(far.job_id));
});
