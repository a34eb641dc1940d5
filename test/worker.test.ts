import test from 'ava';
import { query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { signUp, startService, type TestService, workerPassed } from './helpers/service.ts';

let service: TestService;
let token: string;
test.before(async () => {
  service = await startService({ delaySeconds: 1, worker: true });
  ({ token } = await signUp(service.api));
});
test.after.always(() => service?.stop());

const jobState = async (jobId: string) =>
  (await query<{ state: string }>(service.databaseUrl, 'select state from pgboss.job where id = $1', [jobId]))[0]
    ?.state;

test('a task completes on its own shortly after due_at, together with its job', async (t) => {
  const task = (await service.api.post('/tasks', { title: 'soon' }, token)).body;
  t.is(task.status, 'pending');
  const done = await eventually(async () => {
    const current = (await service.api.get(`/tasks/${task.id}`, token)).body;
    return current.status === 'completed' && current;
  }, 10_000);
  const lateness = Date.parse(done.completed_at) - Date.parse(task.due_at);
  t.log(`completed ${lateness} ms after due_at`);
  t.true(lateness >= 0, 'never before it is due');
  t.true(lateness < 3_000, `completed ${lateness} ms after due_at`);
  t.is(await jobState(task.job_id), 'completed');
});

test('a task deleted before it is due is never completed, and leaves no job', async (t) => {
  const task = (await service.api.post('/tasks', { title: 'deleted' }, token)).body;
  t.is((await service.api.delete(`/tasks/${task.id}`, token)).status, 204);
  await workerPassed(service.api, token, Date.parse(task.due_at));
  t.is(await jobState(task.job_id), undefined);
  const rows = await query(service.databaseUrl, 'select 1 from tasks where id = $1', [task.id]);
  t.is(rows.length, 0);
});

test('a task completed by hand before it is due never changes again; its job is cancelled', async (t) => {
  const task = (await service.api.post('/tasks', { title: 'by hand' }, token)).body;
  const done = (await service.api.patch(`/tasks/${task.id}`, { status: 'completed' }, token)).body;
  await workerPassed(service.api, token, Date.parse(task.due_at));
  const later = (await service.api.get(`/tasks/${task.id}`, token)).body;
  t.deepEqual(later, done);
  t.is(await jobState(task.job_id), 'cancelled');
});
