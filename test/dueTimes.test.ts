/**
 * Each task's own due time: `due_at` or `delay_seconds` on POST /tasks, rescheduling with PATCH, and
 * `GET /tasks?sort=due`. The worker here polls once a minute, so a task completed within two seconds of its
 * due time was woken by the timer, at the time the task says.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { type Reply, signUp, startService, type TestService, workerPassed } from './helpers/service.ts';

let service: TestService;
test.before(async () => {
  service = await startService({ worker: true, pollIntervalSeconds: 60 });
});
test.after.always(() => service?.stop());

type Task = { id: number; status: string; due_at: string; completed_at: string | null; job_id: string };
type JobRow = { id: string; state: string; start_after: Date };

const jobsOfTask = (taskId: number) =>
  query<JobRow>(
    service.databaseUrl,
    `select id, state, start_after from pgboss.job where name = 'complete-task' and (data->>'taskId')::bigint = $1`,
    [taskId],
  );

/** Milliseconds from due_at to completed_at, once the task has completed. */
const latenessOf = async (token: string, id: number) => {
  const task = await eventually(async () => {
    const reply = await service.api.get(`/tasks/${id}`, token);
    return reply.body.status === 'completed' ? (reply.body as Task) : undefined;
  }, 15_000);
  return Date.parse(task.completed_at ?? '') - Date.parse(task.due_at);
};

const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

test('a task due in 3 s by due_at and one due in 2 s by delay_seconds each complete at that time', async (t) => {
  const { token } = await signUp(service.api);
  const dueAt = inSeconds(3);
  const byTime = await service.api.post('/tasks', { title: 'by time', due_at: dueAt }, token);
  const byDelay = await service.api.post('/tasks', { title: 'by delay', delay_seconds: 2 }, token);
  t.is(byTime.status, 201);
  t.is(byTime.body.due_at, dueAt);
  t.is(byDelay.status, 201);
  const delay = Date.parse(byDelay.body.due_at) - Date.parse(byDelay.body.created_at);
  t.true(Math.abs(delay - 2000) <= 1, `due ${delay} ms after creation`);
  for (const task of [byTime.body, byDelay.body] as Task[]) {
    const [job] = await jobsOfTask(task.id);
    t.is(job?.start_after.toISOString(), task.due_at, 'the job starts when the task is due');
    const late = await latenessOf(token, task.id);
    t.true(late >= 0 && late < 2000, `completed ${late} ms after due_at (the poll is 60 s)`);
  }
});

test('delay_seconds 0 is due now, and an offset other than Z is the same instant', async (t) => {
  const { token } = await signUp(service.api);
  const now = await service.api.post('/tasks', { title: 'now', delay_seconds: 0 }, token);
  t.true(Math.abs(Date.parse(now.body.due_at) - Date.parse(now.body.created_at)) <= 1);
  t.true((await latenessOf(token, now.body.id)) < 2000);
  const instant = Math.floor(Date.now() / 1000) * 1000 + 3_600_000;
  const withOffset = `${new Date(instant + 2 * 3_600_000).toISOString().slice(0, 19)}+02:00`;
  const reply = await service.api.post('/tasks', { title: 'offset', due_at: withOffset }, token);
  t.is(reply.status, 201, JSON.stringify(reply.body));
  t.is(Date.parse(reply.body.due_at), instant);
});

test('a task due in an hour, rescheduled to 2 s from now, completes then', async (t) => {
  const { token } = await signUp(service.api);
  const reads = service.wake?.state().reads ?? 0;
  const task: Task = (await service.api.post('/tasks', { title: 'later', delay_seconds: 3600 }, token)).body;
  // The wake timer has read the next due time since: it is armed for the hour (or for a sooner task).
  await eventually(async () => (service.wake?.state().reads ?? 0) > reads, 5_000);
  const moved = await service.api.patch(`/tasks/${task.id}`, { delay_seconds: 2 }, token);
  t.is(moved.status, 200);
  t.not(moved.body.job_id, task.job_id, 'a new job');
  t.true(Math.abs(Date.parse(moved.body.due_at) - (Date.now() + 2000)) < 1000);
  t.deepEqual(
    (await jobsOfTask(task.id)).map((job) => job.id),
    [moved.body.job_id],
    'the old job is gone',
  );
  const late = await latenessOf(token, task.id);
  t.true(late >= 0 && late < 2000, `completed ${late} ms after the new due_at (the poll is 60 s)`);
});

test('a task due in 2 s, rescheduled to an hour from now, is still pending after its old due time and its old job is gone', async (t) => {
  const { token } = await signUp(service.api);
  const task: Task = (await service.api.post('/tasks', { title: 'sooner', delay_seconds: 2 }, token)).body;
  const dueAt = inSeconds(3600);
  const moved = await service.api.patch(`/tasks/${task.id}`, { due_at: dueAt, title: 'moved' }, token);
  t.is(moved.status, 200);
  t.like(moved.body, { status: 'pending', due_at: dueAt, title: 'moved' });
  await workerPassed(service.api, token, Date.parse(task.due_at)); // the old due time, worked past
  t.like((await service.api.get(`/tasks/${task.id}`, token)).body, { status: 'pending', due_at: dueAt });
  const jobs = await jobsOfTask(task.id);
  t.deepEqual(
    jobs.map((job) => [job.id, job.state, job.start_after.toISOString()]),
    [[moved.body.job_id, 'created', dueAt]],
  );
  const [event] = await query<{ type: string }>(
    service.databaseUrl,
    `select type from task_events where task_id = $1 and type = 'rescheduled'`,
    [task.id],
  );
  t.is(event?.type, 'rescheduled', 'the move is an event that streams see');
});

test('rescheduling a completed task is a 409 that changes nothing', async (t) => {
  const { token } = await signUp(service.api);
  const task: Task = (await service.api.post('/tasks', { title: 'done' }, token)).body;
  const done: Task = (await service.api.patch(`/tasks/${task.id}`, { status: 'completed' }, token)).body;
  for (const change of [{ delay_seconds: 60 }, { due_at: inSeconds(60), title: 'renamed' }]) {
    const reply = await service.api.patch(`/tasks/${task.id}`, change, token);
    t.is(reply.status, 409);
    t.is(reply.body.error.code, 'conflict');
  }
  t.deepEqual((await service.api.get(`/tasks/${task.id}`, token)).body, done);
  t.deepEqual(
    (await jobsOfTask(task.id)).map((job) => job.state),
    ['cancelled'],
  );
});

test.serial('bad due times are a 400 naming the field, and create or change nothing', async (t) => {
  const { token } = await signUp(service.api);
  const pending: Task = (await service.api.post('/tasks', { title: 'untouched', delay_seconds: 600 }, token)).body;
  const digest = async () =>
    (
      await query<{ tasks: string; jobs: string; last: string }>(
        service.databaseUrl,
        `select (select count(*) from tasks) tasks, (select count(*) from pgboss.job) jobs,
                (select max(updated_at)::text from tasks) last`,
      )
    )[0];
  const before = await digest();
  const past = new Date(Date.now() - 1000).toISOString();
  const tooFar = new Date(Date.now() + 366 * 86_400_000).toISOString();
  const cases: [Record<string, unknown>, string][] = [
    [{ due_at: inSeconds(60), delay_seconds: 60 }, 'delay_seconds'],
    [{ due_at: past }, 'due_at'],
    [{ due_at: tooFar }, 'due_at'],
    [{ due_at: '2030-01-01T00:00:00' }, 'due_at'], // no zone
    [{ due_at: '2030-01-01' }, 'due_at'],
    [{ due_at: '2030-02-30T00:00:00Z' }, 'due_at'],
    [{ due_at: 'tomorrow' }, 'due_at'],
    [{ due_at: 1_900_000_000 }, 'due_at'],
    [{ due_at: null }, 'due_at'],
    [{ delay_seconds: 1.5 }, 'delay_seconds'],
    [{ delay_seconds: '5' }, 'delay_seconds'],
    [{ delay_seconds: -1 }, 'delay_seconds'],
    [{ delay_seconds: 31_536_001 }, 'delay_seconds'],
    [{ delay_seconds: 1e308 }, 'delay_seconds'],
    [{ delay_seconds: null }, 'delay_seconds'],
  ];
  const check = (reply: Reply, field: string, label: string) => {
    t.is(reply.status, 400, label);
    t.is(reply.body.error.code, 'validation_failed', label);
    t.deepEqual(
      reply.body.error.details.map((detail: { field: string }) => detail.field),
      [field],
      label,
    );
  };
  for (const [change, field] of cases) {
    check(await service.api.post('/tasks', { title: 'x', ...change }, token), field, `POST ${JSON.stringify(change)}`);
    check(await service.api.patch(`/tasks/${pending.id}`, change, token), field, `PATCH ${JSON.stringify(change)}`);
  }
  check(
    await service.api.patch(`/tasks/${pending.id}`, { status: 'completed', delay_seconds: 5 }, token),
    'status',
    'complete and reschedule at once',
  );
  t.deepEqual(await digest(), before);
  t.deepEqual((await service.api.get(`/tasks/${pending.id}`, token)).body, pending);
});

test('an Idempotency-Key fingerprints the due time: the same key with another due time is 422', async (t) => {
  const { token } = await signUp(service.api);
  const post = (body: unknown) =>
    fetch(`${service.baseUrl}/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': 'due-1' },
      body: JSON.stringify(body),
    }).then(async (response) => ({ status: response.status, body: (await response.json()) as any }));
  const first = await post({ title: 'x', delay_seconds: 600 });
  t.is(first.status, 201);
  const again = await post({ title: 'x', delay_seconds: 600 });
  t.is(again.status, 201);
  t.deepEqual(again.body, first.body, 'the first answer');
  for (const other of [{ title: 'x', delay_seconds: 601 }, { title: 'x' }, { title: 'x', due_at: first.body.due_at }]) {
    const reply = await post(other);
    t.is(reply.status, 422, JSON.stringify(other));
    t.is(reply.body.error.code, 'idempotency_key_reused');
  }
});

test('reschedules racing the worker: a task is either moved (and never completed at the old time) or completed (409)', async (t) => {
  const { token } = await signUp(service.api);
  const dueAt = inSeconds(3);
  const created = await Promise.all(
    Array.from({ length: 30 }, (_, i) => service.api.post('/tasks', { title: `race ${i}`, due_at: dueAt }, token)),
  );
  t.deepEqual(
    created.map((reply) => reply.status),
    created.map(() => 201),
  );
  const tasks: Task[] = created.map((reply) => reply.body);
  // PATCHes spread over the moment the tasks come due, so some land before the worker and some after.
  await sleep(Math.max(0, Date.parse(dueAt) - Date.now() - 150));
  const replies = await Promise.all(
    tasks.map(async (task, i) => {
      await sleep(i * 10);
      return service.api.patch(`/tasks/${task.id}`, { delay_seconds: 3600 }, token);
    }),
  );
  // Every old job has settled: gone with its reschedule, or completed with its task (none still runs).
  await eventually(async () => {
    const live = await query<{ n: number }>(
      service.databaseUrl,
      `select count(*)::int as n from pgboss.job where id = any($1::uuid[]) and state in ('created', 'retry', 'active')`,
      [tasks.map((task) => task.job_id)],
    );
    return live[0]?.n === 0;
  }, 15_000);
  const outcomes = { moved: 0, completed: 0 };
  for (const [i, reply] of replies.entries()) {
    const task = tasks[i] as Task;
    const now: Task = (await service.api.get(`/tasks/${task.id}`, token)).body;
    const jobs = await jobsOfTask(task.id);
    if (reply.status === 200) {
      outcomes.moved++;
      t.is(now.status, 'pending', `task ${task.id} was moved, so the old job must not complete it`);
      t.is(now.job_id, reply.body.job_id);
      t.deepEqual(
        jobs.filter((job) => job.state !== 'completed').map((job) => [job.id, job.state]),
        [[now.job_id, 'created']],
      );
    } else {
      outcomes.completed++;
      t.is(reply.status, 409, JSON.stringify(reply.body));
      t.is(now.status, 'completed');
      t.is(now.due_at, dueAt, 'the reschedule changed nothing');
    }
  }
  t.log(`of 30 reschedules racing the worker: ${outcomes.moved} moved, ${outcomes.completed} were completed first`);
});

test('reschedules racing deletes: one outcome each, never a 5xx, never a job left without its task', async (t) => {
  const { token } = await signUp(service.api);
  for (let round = 0; round < 20; round++) {
    const task: Task = (await service.api.post('/tasks', { title: `race ${round}` }, token)).body;
    const patch = service.api.patch(`/tasks/${task.id}`, { delay_seconds: 60 + round }, token);
    const remove = service.api.delete(`/tasks/${task.id}`, token);
    const [patched, deleted] = await Promise.all(round % 2 ? [patch, remove] : [patch, remove].reverse());
    const statuses = [patched?.status, deleted?.status].sort();
    t.true(
      JSON.stringify(statuses) === '[200,204]' || JSON.stringify(statuses) === '[204,404]',
      `round ${round}: ${statuses}`,
    );
    t.is((await service.api.get(`/tasks/${task.id}`, token)).status, 404);
    t.deepEqual(await jobsOfTask(task.id), [], `round ${round}: no job of the deleted task remains`);
  }
});

test('GET /tasks?sort=due pages through tasks created in random due order: in order, no gap, no repeat', async (t) => {
  const { token, user } = await signUp(service.api);
  // Random due times, some shared (ties go by id), created in random order.
  const delays = Array.from(
    { length: 37 },
    (_, i) => 600 + Math.floor(Math.random() * 20) * 60 + (i % 3 === 0 ? 0 : 1),
  );
  const created: Task[] = [];
  for (const delay of delays) {
    created.push((await service.api.post('/tasks', { title: `d${delay}`, delay_seconds: delay }, token)).body);
  }
  for (const task of created.slice(0, 5)) await service.api.patch(`/tasks/${task.id}`, { status: 'completed' }, token);
  const byDue = (a: Task, b: Task) => a.due_at.localeCompare(b.due_at) || a.id - b.id;

  const walk = async (first: string, viewer: string) => {
    const seen: Task[] = [];
    let next: string | null = first;
    while (next) {
      const page: Reply = await service.api.get(next, viewer);
      t.is(page.status, 200, JSON.stringify(page.body));
      seen.push(...page.body);
      const link = page.headers.get('link');
      next = link ? (/^<([^>]+)>; rel="next"$/.exec(link)?.[1] ?? null) : null;
    }
    return seen.map((task) => task.id);
  };
  const all = await walk('/tasks?sort=due&limit=5', token);
  t.deepEqual(
    all,
    [...created].sort(byDue).map((task) => task.id),
  );
  const pendingOnly = await walk('/tasks?sort=due&status=pending&limit=4', token);
  t.deepEqual(
    pendingOnly,
    created
      .slice(5)
      .sort(byDue)
      .map((task) => task.id),
  );
  // An admin's list of one user, the same order.
  const { token: adminToken } = await signUp(service.api, 'admin');
  t.deepEqual(await walk(`/tasks?sort=due&limit=6&user_id=${user.id}`, adminToken), all);

  // A cursor of one order is no cursor of the other.
  const createdCursor = await service.api.get(`/tasks?sort=due&cursor=${created[0]?.id}`, token);
  t.is(createdCursor.status, 400);
  t.deepEqual(createdCursor.body.error.details, [
    { field: 'cursor', message: 'must be a next-page cursor of sort=due' },
  ]);
  const dueCursor = encodeURIComponent(`${created[0]?.due_at}_${created[0]?.id}`);
  t.is((await service.api.get(`/tasks?cursor=${dueCursor}`, token)).status, 400);
  t.is((await service.api.get(`/tasks?sort=soon`, token)).status, 400);
});
