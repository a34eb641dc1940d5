import test from 'ava';
import pg from 'pg';
import { query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { type Reply, signUp, startService, type TestService } from './helpers/service.ts';

let service: TestService;
let admin: Awaited<ReturnType<typeof signUp>>;
test.before(async () => {
  service = await startService(); // default delay, no worker: nothing completes during these tests
  admin = await signUp(service.api, 'admin');
});
test.after.always(() => service?.stop());

type JobRow = { id: string; state: string; start_after: Date; created_on: Date; data: { taskId: number } };
const jobOf = async (jobId: string) =>
  (
    await query<JobRow>(
      service.databaseUrl,
      'select id, state, start_after, created_on, data from pgboss.job where id = $1',
      [jobId],
    )
  )[0];

test('POST /tasks creates a pending task with its job in pg-boss, due after the default 120 s', async (t) => {
  const { token, user } = await signUp(service.api);
  const reply = await service.api.post('/tasks', { title: '  Buy milk ', description: 'two litres' }, token);
  t.is(reply.status, 201);
  t.is(reply.headers.get('location'), `/tasks/${reply.body.id}`);
  t.like(reply.body, {
    user_id: user.id,
    title: 'Buy milk',
    description: 'two litres',
    status: 'pending',
    completed_at: null,
  });
  t.true(Number.isInteger(reply.body.id));
  t.is(Date.parse(reply.body.due_at) - Date.parse(reply.body.created_at), 120_000);

  const job = await jobOf(reply.body.job_id);
  t.is(job?.state, 'created');
  t.deepEqual(job?.data, { taskId: reply.body.id });
  t.is(job?.start_after.toISOString(), reply.body.due_at);
  // Read as an operator would: the job's start_after minus its creation time is the default delay.
  const seconds = (job?.start_after.getTime() ?? 0) - (job?.created_on.getTime() ?? 0);
  t.true(Math.abs(seconds - 120_000) < 5, `start_after - created_on = ${seconds} ms`);
});

test.serial('bad task input is a validation error naming the field, and creates neither task nor job', async (t) => {
  const { token } = await signUp(service.api);
  const count = async () =>
    (
      await query<{ tasks: string; jobs: string }>(
        service.databaseUrl,
        `select (select count(*) from tasks) tasks, (select count(*) from pgboss.job) jobs`,
      )
    )[0];
  const before = await count();
  const cases: [unknown, string[]][] = [
    [{}, ['title']],
    [{ title: '   ' }, ['title']],
    [{ title: 'x'.repeat(201) }, ['title']],
    [{ title: 'ok', description: 5 }, ['description']],
    [{ title: 'ok', status: 'completed' }, ['(body)']],
    [[], ['(body)']],
  ];
  for (const [body, fields] of cases) {
    const reply = await service.api.post('/tasks', body, token);
    t.is(reply.status, 400, JSON.stringify(body));
    t.is(reply.body.error.code, 'validation_failed');
    t.deepEqual(
      reply.body.error.details.map((detail: { field: string }) => detail.field),
      fields,
      JSON.stringify(body),
    );
  }
  t.deepEqual(await count(), before);
});

test('the task routes need a token', async (t) => {
  for (const reply of [await service.api.get('/tasks'), await service.api.post('/tasks', { title: 'x' })]) {
    t.is(reply.status, 401);
    t.is(reply.body.error.code, 'unauthorized');
  }
});

test("owners see only their own tasks; someone else's task is a 404 on every route", async (t) => {
  const alice = await signUp(service.api);
  const bob = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 'alice only' }, alice.token)).body;

  t.is((await service.api.get(`/tasks/${task.id}`, alice.token)).status, 200);
  const attempts: Reply[] = [
    await service.api.get(`/tasks/${task.id}`, bob.token),
    await service.api.patch(`/tasks/${task.id}`, { title: 'mine now' }, bob.token),
    await service.api.patch(`/tasks/${task.id}`, { status: 'completed' }, bob.token),
    await service.api.delete(`/tasks/${task.id}`, bob.token),
  ];
  for (const reply of attempts) {
    t.is(reply.status, 404);
    t.is(reply.body.error.code, 'not_found');
  }
  t.deepEqual((await service.api.get('/tasks', bob.token)).body, []);
  t.is((await service.api.get(`/tasks?user_id=${alice.user.id}`, bob.token)).status, 403);
  // Nothing changed.
  t.like((await service.api.get(`/tasks/${task.id}`, alice.token)).body, { title: 'alice only', status: 'pending' });
  t.is((await jobOf(task.job_id))?.state, 'created');
});

test('a non-numeric or unknown id is 404', async (t) => {
  const { token } = await signUp(service.api);
  for (const id of ['abc', '0', '-1', '1.5', '99999999', '9'.repeat(30)]) {
    const reply = await service.api.get(`/tasks/${id}`, token);
    t.is(reply.status, 404, id);
    t.is(reply.body.error.code, 'not_found');
  }
});

test('admins read, change and delete any task, and list everyone with ?user_id= to filter', async (t) => {
  const carol = await signUp(service.api);
  const dave = await signUp(service.api);
  const carols = (await service.api.post('/tasks', { title: 'carol task' }, carol.token)).body;
  const daves = (await service.api.post('/tasks', { title: 'dave task' }, dave.token)).body;

  const all = (await service.api.get('/tasks?limit=100', admin.token)).body.map((task: { id: number }) => task.id);
  t.true(all.includes(carols.id) && all.includes(daves.id));
  const onlyCarol = (await service.api.get(`/tasks?user_id=${carol.user.id}`, admin.token)).body;
  t.deepEqual(
    onlyCarol.map((task: { id: number }) => task.id),
    [carols.id],
  );

  t.is((await service.api.get(`/tasks/${carols.id}`, admin.token)).body.title, 'carol task');
  t.is(
    (await service.api.patch(`/tasks/${carols.id}`, { title: 'edited by admin' }, admin.token)).body.title,
    'edited by admin',
  );
  t.is((await service.api.delete(`/tasks/${daves.id}`, admin.token)).status, 204);
  t.is((await service.api.get(`/tasks/${daves.id}`, dave.token)).status, 404);
});

test('PATCH changes title and description; completing by hand cancels the job in the same transaction', async (t) => {
  const { token } = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 'draft' }, token)).body;
  const edited = await service.api.patch(`/tasks/${task.id}`, { title: 'final', description: 'details' }, token);
  t.is(edited.status, 200);
  t.like(edited.body, { title: 'final', description: 'details', status: 'pending' });
  t.true(Date.parse(edited.body.updated_at) >= Date.parse(task.updated_at));

  const done = await service.api.patch(`/tasks/${task.id}`, { status: 'completed' }, token);
  t.is(done.status, 200);
  t.is(done.body.status, 'completed');
  t.truthy(done.body.completed_at);
  t.is((await jobOf(task.job_id))?.state, 'cancelled');

  // Completing again is a no-op that answers with the task as it is.
  const again = await service.api.patch(`/tasks/${task.id}`, { status: 'completed' }, token);
  t.is(again.body.completed_at, done.body.completed_at);
  for (const body of [{ status: 'pending' }, {}, { title: '' }, { owner: 1 }]) {
    const reply = await service.api.patch(`/tasks/${task.id}`, body, token);
    t.is(reply.status, 400, JSON.stringify(body));
    t.is(reply.body.error.code, 'validation_failed');
  }
});

test('DELETE removes the task and its job in one transaction', async (t) => {
  const { token } = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 'to delete' }, token)).body;
  t.is((await service.api.delete(`/tasks/${task.id}`, token)).status, 204);
  t.is((await service.api.get(`/tasks/${task.id}`, token)).status, 404);
  t.is(await jobOf(task.job_id), undefined);
  t.is((await service.api.delete(`/tasks/${task.id}`, token)).status, 404);
});

test('GET /tasks filters by status and rejects bad query values by name', async (t) => {
  const { token } = await signUp(service.api);
  const first = (await service.api.post('/tasks', { title: 'one' }, token)).body;
  const second = (await service.api.post('/tasks', { title: 'two' }, token)).body;
  await service.api.patch(`/tasks/${first.id}`, { status: 'completed' }, token);

  const ids = (reply: Reply) => reply.body.map((task: { id: number }) => task.id);
  t.deepEqual(ids(await service.api.get('/tasks', token)), [second.id, first.id]);
  t.deepEqual(ids(await service.api.get('/tasks?status=pending', token)), [second.id]);
  t.deepEqual(ids(await service.api.get('/tasks?status=completed', token)), [first.id]);
  for (const [search, field] of [
    ['status=done', 'status'],
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=ten', 'limit'],
    ['cursor=-3', 'cursor'],
    ['sort=asc', 'sort'],
    ['order=asc', '(body)'],
  ]) {
    const reply = await service.api.get(`/tasks?${search}`, token);
    t.is(reply.status, 400, search);
    t.deepEqual(
      reply.body.error.details.map((detail: { field: string }) => detail.field),
      [field],
      search,
    );
  }
});

test('cursor pagination walks every task exactly once, newest first, while tasks are added and deleted', async (t) => {
  const { token } = await signUp(service.api);
  const created: number[] = [];
  for (let i = 0; i < 23; i++) created.push((await service.api.post('/tasks', { title: `task ${i}` }, token)).body.id);
  const deleted = new Set([created[3], created[10]]);

  const seen: number[] = [];
  let next: string | null = '/tasks?limit=5';
  let pages = 0;
  while (next) {
    const page: Reply = await service.api.get(next, token);
    t.is(page.status, 200);
    seen.push(...page.body.map((task: { id: number }) => task.id));
    const link = page.headers.get('link');
    next = link ? (/^<([^>]+)>; rel="next"$/.exec(link)?.[1] ?? null) : null;
    if (pages === 0) {
      // Meanwhile: two new tasks arrive and two not yet listed are deleted.
      await service.api.post('/tasks', { title: 'late 1' }, token);
      await service.api.post('/tasks', { title: 'late 2' }, token);
      for (const id of deleted) await service.api.delete(`/tasks/${id}`, token);
    }
    pages++;
  }
  const expected = created.filter((id) => !deleted.has(id)).reverse();
  t.deepEqual(seen, expected);
  t.is(pages, 5);
});

test('PATCH completing a task that a DELETE removes meanwhile is a 404, not the stale pending task', async (t) => {
  const { token } = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 'raced' }, token)).body;
  // The DELETE holds the row lock, uncommitted, while the PATCH waits to lock the row; then it commits.
  const deleter = new pg.Client(service.databaseUrl);
  await deleter.connect();
  t.teardown(() => deleter.end());
  await deleter.query('begin');
  await deleter.query('delete from tasks where id = $1', [task.id]);
  const patch = service.api.patch(`/tasks/${task.id}`, { status: 'completed' }, token);
  await eventually(async () => {
    const waiting = await query<{ n: number }>(
      service.databaseUrl,
      `select count(*)::int n from pg_stat_activity where wait_event_type = 'Lock' and query like '%for update%'`,
    );
    return waiting[0]?.n === 1;
  }, 5_000);
  await deleter.query('commit');
  const reply = await patch;
  t.is(reply.status, 404);
  t.is(reply.body.error.code, 'not_found');
});

test('the task routes authenticate under every spelling of their path (/TASKS, /Tasks/1)', async (t) => {
  const { token } = await signUp(service.api);
  const task = (await service.api.post('/TASKS', { title: 'shouting' }, token)).body;
  t.is(typeof task.id, 'number');
  for (const path of ['/TASKS', '/Tasks/', `/TASKS/${task.id}`, `/tasks/${task.id}/`]) {
    const anonymous = await service.api.get(path);
    t.is(anonymous.status, 401, path);
    t.is(anonymous.body.error.code, 'unauthorized');
    t.is((await service.api.get(path, token)).status, 200, path);
  }
  t.is((await service.api.delete(`/TASKS/${task.id}`)).status, 401);
  t.is((await service.api.patch(`/Tasks/${task.id}`, { title: 'x' })).status, 401);
});
