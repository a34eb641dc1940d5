/**
 * Recurring tasks: every occurrence is a task, written with its job in the transaction that creates,
 * resumes or changes the schedule, and the next in the one that completes or deletes the current one.
 * Against a real Postgres; the cron rules (DST) through GET /schedules/:id/upcoming and real completions.
 */
import test from 'ava';
import { query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { signUp, startService, type TestService } from './helpers/service.ts';

let service: TestService; // with the worker; a cron may fire every second here
test.before(async () => {
  service = await startService({ worker: true, minScheduleIntervalSeconds: 1 });
});
test.after.always(() => service?.stop());

type Schedule = {
  id: number;
  user_id: number;
  cron: string;
  time_zone: string;
  paused: boolean;
  next_due_at: string | null;
  next_task_id: number | null;
  skipped: number;
  title: string;
};
type Task = {
  id: number;
  status: string;
  due_at: string;
  completed_at: string | null;
  schedule_id: number | null;
  title: string;
  job_id: string;
};

const create = (token: string, body: Record<string, unknown>) => service.api.post('/schedules', body, token);
const occurrences = (scheduleId: number) =>
  query<{ id: number; status: string; due_at: Date; completed_at: Date | null; job_id: string | null }>(
    service.databaseUrl,
    'select id::int, status, due_at, completed_at, job_id from tasks where schedule_id = $1 order by id',
    [scheduleId],
  );
const liveJobs = (scheduleId: number) =>
  query<{ id: string }>(
    service.databaseUrl,
    `select j.id from pgboss.job j join tasks t on t.job_id = j.id
     where t.schedule_id = $1 and j.state in ('created', 'retry', 'active')`,
    [scheduleId],
  );
const upcoming = async (token: string, id: number, from: string, count = 3) => {
  const reply = await service.api.get(`/schedules/${id}/upcoming?from=${from}&count=${count}`, token);
  return reply.body as { due_at: string; local: string }[];
};

test('a schedule is created with its first occurrence: a pending task with its job, listed by schedule_id', async (t) => {
  const { token, user } = await signUp(service.api);
  const reply = await create(token, { title: 'Stand-up', cron: '0 9 * * MON-FRI', time_zone: 'Europe/Berlin' });
  t.is(reply.status, 201, JSON.stringify(reply.body));
  t.is(reply.headers.get('location'), `/schedules/${reply.body.id}`);
  const schedule: Schedule = reply.body;
  t.like(schedule, {
    user_id: user.id,
    cron: '0 9 * * MON-FRI',
    time_zone: 'Europe/Berlin',
    paused: false,
    skipped: 0,
  });
  const task: Task = (await service.api.get(`/tasks/${schedule.next_task_id}`, token)).body;
  t.like(task, { status: 'pending', schedule_id: schedule.id, title: 'Stand-up', due_at: schedule.next_due_at });
  const local = (await upcoming(token, schedule.id, new Date().toISOString(), 1))[0];
  t.is(local?.due_at, schedule.next_due_at ?? undefined);
  t.regex(local?.local ?? '', /T09:00:00\+0[12]:00$/, 'at nine, Berlin time');
  t.deepEqual((await liveJobs(schedule.id)).length, 1);
  const listed = await service.api.get(`/tasks?schedule_id=${schedule.id}`, token);
  t.deepEqual(
    listed.body.map((row: Task) => row.id),
    [task.id],
  );
  t.deepEqual(
    (await service.api.get('/schedules', token)).body.map((row: Schedule) => row.id),
    [schedule.id],
  );
});

test('bad crons, zones and intervals are a 400 naming the field, and change nothing', async (t) => {
  const { token } = await signUp(service.api);
  const cases: [Record<string, unknown>, string][] = [
    [{ cron: '* * * *' }, 'cron'],
    [{ cron: '61 * * * *' }, 'cron'],
    [{ cron: '0 0 31 2 *' }, 'cron'], // never fires
    [{ cron: '2027-01-23T00:00:00' }, 'cron'],
    [{ cron: '0 9 * * *', time_zone: 'Mars/Olympus_Mons' }, 'time_zone'],
    [{ cron: '' }, 'cron'],
  ];
  for (const [body, field] of cases) {
    const reply = await create(token, { title: 'bad', ...body });
    t.is(reply.status, 400, JSON.stringify(body));
    t.is(reply.body.error.details?.[0]?.field, field, JSON.stringify(reply.body));
  }
  t.deepEqual((await service.api.get('/schedules', token)).body, []);
});

test('the minimum interval: a cron firing more often than SCHEDULE_MIN_INTERVAL_SECONDS is a 400', async (t) => {
  const strict = await startService({ databaseUrl: service.databaseUrl }); // 60 s, the default
  t.teardown(() => strict.stop());
  const { token } = await signUp(strict.api);
  const every30s = await strict.api.post('/schedules', { title: 'often', cron: '*/30 * * * * *' }, token);
  t.is(every30s.status, 400);
  t.is(every30s.body.error.details[0].field, 'cron');
  t.regex(every30s.body.error.details[0].message, /every 30 s.*60 s/);
  const everyMinute = await strict.api.post('/schedules', { title: 'ok', cron: '* * * * *' }, token);
  t.is(everyMinute.status, 201);
});

test('daylight saving time: a missing local time fires once, as far past the gap; a repeated one once, at the first', async (t) => {
  const { token } = await signUp(service.api);
  const scheduleOf = async (cron: string, time_zone: string) =>
    (await create(token, { title: `${cron} ${time_zone}`, cron, time_zone, paused: true })).body.id as number;
  const localsOf = async (id: number, from: string, count: number) =>
    (await upcoming(token, id, from, count)).map((time) => time.local);

  // New York, spring forward (2027-03-14, 02:00 → 03:00) and fall back (2027-11-07, 02:00 → 01:00).
  const nyDaily = await scheduleOf('30 2 * * *', 'America/New_York');
  t.deepEqual(await localsOf(nyDaily, '2027-03-13T12:00:00Z', 3), [
    '2027-03-14T03:30:00-04:00',
    '2027-03-15T02:30:00-04:00',
    '2027-03-16T02:30:00-04:00',
  ]);
  // Every time in the gap fires, each as far past it, also when asked from inside the shifted hour.
  const nyInGap = await scheduleOf('*/15 2 * * *', 'America/New_York');
  t.deepEqual(await localsOf(nyInGap, '2027-03-14T05:00:00Z', 5), [
    '2027-03-14T03:00:00-04:00',
    '2027-03-14T03:15:00-04:00',
    '2027-03-14T03:30:00-04:00',
    '2027-03-14T03:45:00-04:00',
    '2027-03-15T02:00:00-04:00',
  ]);
  t.deepEqual(await localsOf(nyDaily, '2027-03-14T07:10:00Z', 1), ['2027-03-14T03:30:00-04:00']);
  const nyRepeated = await scheduleOf('30 1 * * *', 'America/New_York');
  t.deepEqual(await localsOf(nyRepeated, '2027-11-06T12:00:00Z', 2), [
    '2027-11-07T01:30:00-04:00',
    '2027-11-08T01:30:00-05:00',
  ]);
  const nyHourly = await scheduleOf('0 * * * *', 'America/New_York');
  t.deepEqual(await localsOf(nyHourly, '2027-03-14T05:30:00Z', 3), [
    '2027-03-14T01:00:00-05:00',
    '2027-03-14T03:00:00-04:00', // 02:00 does not exist: once, at 03:00 (with 03:00 itself)
    '2027-03-14T04:00:00-04:00',
  ]);
  t.deepEqual(await localsOf(nyHourly, '2027-11-07T04:30:00Z', 3), [
    '2027-11-07T01:00:00-04:00',
    '2027-11-07T02:00:00-05:00', // 01:00 happens twice: once, at the first
    '2027-11-07T03:00:00-05:00',
  ]);
  // Berlin (2027-03-28 02:00 → 03:00; 2027-10-31 03:00 → 02:00).
  const berlin = await scheduleOf('30 2 * * *', 'Europe/Berlin');
  t.deepEqual(await localsOf(berlin, '2027-03-27T12:00:00Z', 2), [
    '2027-03-28T03:30:00+02:00',
    '2027-03-29T02:30:00+02:00',
  ]);
  t.deepEqual(await localsOf(berlin, '2027-10-30T12:00:00Z', 2), [
    '2027-10-31T02:30:00+02:00',
    '2027-11-01T02:30:00+01:00',
  ]);
  // Sydney, southern hemisphere (2027-10-03 02:00 → 03:00; 2027-04-04 03:00 → 02:00).
  const sydney = await scheduleOf('30 2 * * *', 'Australia/Sydney');
  t.deepEqual(await localsOf(sydney, '2027-10-02T00:00:00Z', 2), [
    '2027-10-03T03:30:00+11:00',
    '2027-10-04T02:30:00+11:00',
  ]);
  t.deepEqual(await localsOf(sydney, '2027-04-03T00:00:00Z', 2), [
    '2027-04-04T02:30:00+11:00',
    '2027-04-05T02:30:00+10:00',
  ]);
  // Lord Howe shifts by half an hour (2027-10-03 02:00 → 02:30; 2027-04-04 02:00 → 01:30).
  const lordHowe = await scheduleOf('15 2 * * *', 'Australia/Lord_Howe');
  t.deepEqual(await localsOf(lordHowe, '2027-10-02T00:00:00Z', 2), [
    '2027-10-03T02:45:00+11:00',
    '2027-10-04T02:15:00+11:00',
  ]);
  const lordHoweRepeated = await scheduleOf('45 1 * * *', 'Australia/Lord_Howe');
  t.deepEqual(await localsOf(lordHoweRepeated, '2027-04-03T00:00:00Z', 2), [
    '2027-04-04T01:45:00+11:00',
    '2027-04-05T01:45:00+10:30',
  ]);
  const upcomingUtc = await upcoming(token, nyDaily, '2027-03-13T12:00:00Z', 1);
  t.deepEqual(upcomingUtc, [{ due_at: '2027-03-14T07:30:00.000Z', local: '2027-03-14T03:30:00-04:00' }]);
});

test('each occurrence completes at its time and the next is written with it: one pending occurrence, always', async (t) => {
  const { token } = await signUp(service.api);
  const schedule: Schedule = (await create(token, { title: 'every 2 s', cron: '*/2 * * * * *' })).body;
  const seen = new Set<number>();
  // Four occurrences complete, each at its cron time (an even second), and the fifth waits.
  const done = await eventually(async () => {
    const rows = await occurrences(schedule.id);
    t.true(rows.filter((row) => row.status === 'pending').length <= 1, 'never two pending');
    for (const row of rows) seen.add(row.id);
    const completed = rows.filter((row) => row.status === 'completed');
    return completed.length >= 4 && completed;
  }, 20_000);
  for (const row of done) {
    t.is(row.due_at.getTime() % 2000, 0, 'due at an even second');
    const late = (row.completed_at?.getTime() ?? 0) - row.due_at.getTime();
    t.true(late >= 0 && late < 1000, `completed ${late} ms after its time`);
  }
  const dues = done.map((row) => row.due_at.getTime());
  for (let i = 1; i < dues.length; i++) t.is((dues[i] ?? 0) - (dues[i - 1] ?? 0), 2000, 'no time twice, none skipped');
  t.is((await occurrences(schedule.id)).filter((row) => row.status === 'pending').length, 1);
  t.is((await service.api.delete(`/schedules/${schedule.id}`, token)).status, 204);
  const left = await occurrences(schedule.id);
  t.deepEqual(left, [], 'its completed occurrences stay, but no longer name it');
  const kept = await query<{ n: number }>(
    service.databaseUrl,
    `select count(*)::int n from tasks where id = any($1::bigint[]) and schedule_id is null and status = 'completed'`,
    [[...seen]],
  );
  t.true((kept[0]?.n ?? 0) >= 4);
});

test('completing an occurrence early, rescheduling it, or deleting it: never twice for one cron time, none ahead skipped', async (t) => {
  const { token } = await signUp(service.api);
  const schedule: Schedule = (await create(token, { title: 'hourly', cron: '0 * * * *' })).body;
  const first = schedule.next_due_at as string;
  const hour = 3_600_000;

  // Completed by hand before its time: the next is the following hour, not the same one again.
  t.is((await service.api.patch(`/tasks/${schedule.next_task_id}`, { status: 'completed' }, token)).status, 200);
  let now: Schedule = (await service.api.get(`/schedules/${schedule.id}`, token)).body;
  t.is(Date.parse(now.next_due_at ?? ''), Date.parse(first) + hour);

  // Moved later by hand, then completed: the schedule goes on from its cron time, not from the moved one.
  const moved = await service.api.patch(`/tasks/${now.next_task_id}`, { delay_seconds: 3 * 3600 }, token);
  t.is(moved.status, 200);
  t.is((await service.api.patch(`/tasks/${now.next_task_id}`, { status: 'completed' }, token)).status, 200);
  now = (await service.api.get(`/schedules/${schedule.id}`, token)).body;
  t.is(Date.parse(now.next_due_at ?? ''), Date.parse(first) + 2 * hour);

  // Deleted: the next one is written in the same transaction.
  t.is((await service.api.delete(`/tasks/${now.next_task_id}`, token)).status, 204);
  now = (await service.api.get(`/schedules/${schedule.id}`, token)).body;
  t.is(Date.parse(now.next_due_at ?? ''), Date.parse(first) + 3 * hour);
  t.is(now.skipped, 0);
  const pending = (await occurrences(schedule.id)).filter((row) => row.status === 'pending');
  t.deepEqual(
    pending.map((row) => row.id),
    [now.next_task_id],
  );
  t.is((await liveJobs(schedule.id)).length, 1);
});

test('pause deletes the pending occurrence and its job; resume writes the next; a new cron moves it; new text applies to it', async (t) => {
  const { token } = await signUp(service.api);
  const schedule: Schedule = (await create(token, { title: 'daily', cron: '0 6 * * *', time_zone: 'UTC' })).body;
  const paused = await service.api.patch(`/schedules/${schedule.id}`, { paused: true }, token);
  t.like(paused.body, { paused: true, next_due_at: null, next_task_id: null });
  t.deepEqual(await occurrences(schedule.id), []);
  t.deepEqual(await liveJobs(schedule.id), []);

  const resumed = await service.api.patch(`/schedules/${schedule.id}`, { paused: false }, token);
  t.like(resumed.body, { paused: false });
  t.regex(resumed.body.next_due_at, /T06:00:00\.000Z$/);

  const retimed = await service.api.patch(
    `/schedules/${schedule.id}`,
    { cron: '30 7 * * *', time_zone: 'Asia/Tokyo' },
    token,
  );
  t.is(retimed.status, 200, JSON.stringify(retimed.body));
  t.regex(retimed.body.next_due_at, /T22:30:00\.000Z$/, '07:30 in Tokyo');
  const rows = await occurrences(schedule.id);
  t.deepEqual(
    rows.map((row) => [row.status, row.due_at.toISOString()]),
    [['pending', retimed.body.next_due_at]],
    'the old occurrence is gone, the new one written',
  );
  t.is((await liveJobs(schedule.id)).length, 1);

  const renamed = await service.api.patch(`/schedules/${schedule.id}`, { title: 'renamed' }, token);
  t.is(renamed.body.next_task_id, retimed.body.next_task_id, 'text alone does not move it');
  t.is((await service.api.get(`/tasks/${renamed.body.next_task_id}`, token)).body.title, 'renamed');
});

test("someone else's schedule is a 404; an admin sees all; at most 100 per user; the database refuses a second pending occurrence", async (t) => {
  const alice = await signUp(service.api);
  const bob = await signUp(service.api);
  const schedule: Schedule = (await create(alice.token, { title: 'mine', cron: '0 0 * * *', paused: true })).body;
  t.is((await service.api.get(`/schedules/${schedule.id}`, bob.token)).status, 404);
  t.is((await service.api.patch(`/schedules/${schedule.id}`, { paused: false }, bob.token)).status, 404);
  t.is((await service.api.delete(`/schedules/${schedule.id}`, bob.token)).status, 404);
  t.is((await service.api.get(`/schedules/${schedule.id}/upcoming`, bob.token)).status, 404);
  t.is((await service.api.get(`/schedules?user_id=${alice.user.id}`, bob.token)).status, 403);

  for (let i = 1; i < 100; i++) {
    const reply = await create(alice.token, { title: `n${i}`, cron: '0 0 * * *', paused: true });
    t.is(reply.status, 201);
  }
  const over = await create(alice.token, { title: 'one too many', cron: '0 0 * * *' });
  t.is(over.status, 409);

  const active: Schedule = (await create(bob.token, { title: 'active', cron: '0 0 * * *' })).body;
  const error = await t.throwsAsync(
    query(
      service.databaseUrl,
      `insert into tasks (user_id, title, due_at, schedule_id) values ($1, 'second', now() + interval '1 hour', $2)`,
      [bob.user.id, active.id],
    ),
  );
  t.regex(error?.message ?? '', /tasks_one_pending_occurrence/);
});

test('an Idempotency-Key: a retry gets the first schedule and creates nothing; another body is a 422', async (t) => {
  const { token } = await signUp(service.api);
  const send = (body: Record<string, unknown>) =>
    service.api.raw('POST', '/schedules', {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': 'sched-1' },
      body: JSON.stringify(body),
    });
  const first = await send({ title: 'once', cron: '0 0 * * *' });
  const again = await send({ title: 'once', cron: '0 0 * * *' });
  t.is(first.status, 201);
  t.is(again.status, 201);
  t.is(again.body.id, first.body.id);
  t.is((await send({ title: 'other', cron: '0 0 * * *' })).status, 422);
  t.is((await service.api.get('/schedules', token)).body.length, 1);
});

test("an admin lists everyone's schedules, or one user's; deleting a user deletes their schedules and their occurrences' jobs", async (t) => {
  const admin = await signUp(service.api, 'admin'); // the first admin of this database: no token needed
  const carol = await signUp(service.api);
  const schedule: Schedule = (await create(carol.token, { title: "carol's", cron: '0 12 * * *' })).body;
  const everyone = await service.api.get('/schedules?limit=100', admin.token);
  t.true(everyone.body.some((row: Schedule) => row.id === schedule.id));
  const hers = await service.api.get(`/schedules?user_id=${carol.user.id}`, admin.token);
  t.deepEqual(
    hers.body.map((row: Schedule) => row.id),
    [schedule.id],
  );
  t.is((await service.api.get(`/schedules/${schedule.id}`, admin.token)).status, 200);
  const jobId = (await service.api.get(`/tasks/${schedule.next_task_id}`, carol.token)).body.job_id;

  const deleted = await service.api.raw('DELETE', '/me', {
    headers: { authorization: `Bearer ${carol.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ password: 'password123' }),
  });
  t.is(deleted.status, 204);
  const [left] = await query<{ schedules: number; tasks: number; jobs: number }>(
    service.databaseUrl,
    `select (select count(*)::int from schedules where user_id = $1) schedules,
            (select count(*)::int from tasks where user_id = $1) tasks,
            (select count(*)::int from pgboss.job where id = $2 and state in ('created', 'retry', 'active')) jobs`,
    [carol.user.id, jobId],
  );
  t.deepEqual(left, { schedules: 0, tasks: 0, jobs: 0 });
});
