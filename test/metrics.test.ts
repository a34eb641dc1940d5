import test from 'ava';
import { createTestDatabase } from './helpers/db.ts';
import { eventually, spawnService } from './helpers/process.ts';
import { freePort } from './helpers/proxy.ts';
import { client, signUp, startService, TEST_SECRET } from './helpers/service.ts';

/** The value of one series in Prometheus' text format, e.g. `task_manager_tasks_created_total`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `) || entry.startsWith(`${series}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}
/** Like `sample`, for a series with labels that must all be present (in any order). */
function sampleWith(text: string, name: string, labels: Record<string, string>): number | undefined {
  const line = text
    .split('\n')
    .find(
      (entry) =>
        entry.startsWith(`${name}{`) &&
        Object.entries(labels).every(([key, value]) => entry.includes(`${key}="${value}"`)),
    );
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('GET /metrics: requests by route and status, tasks created and completed, lateness, process figures', async (t) => {
  const service = await startService({ worker: true, delaySeconds: 1 });
  t.teardown(() => service.stop());
  const metrics = async () => (await fetch(`${service.baseUrl}/metrics`)).text();
  const before = await metrics();
  t.is(sample(before, 'task_manager_tasks_created_total'), 0);
  t.true((sample(before, 'process_resident_memory_bytes') ?? 0) > 0, 'default process metrics');

  const { token } = await signUp(service.api);
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await service.api.post('/tasks', { title: `metric ${i}` }, token)).body.id);
  await service.api.get('/tasks/999999', token);
  await service.api.get('/no-such-route');
  const created = await metrics();
  t.is(sample(created, 'task_manager_tasks_created_total'), 3);
  t.is(
    sampleWith(created, 'http_request_duration_seconds_count', { route: '/tasks', method: 'POST', status: '201' }),
    3,
  );
  t.is(sampleWith(created, 'http_request_duration_seconds_count', { route: '/tasks/:id', status: '404' }), 1);
  t.is(sampleWith(created, 'http_request_duration_seconds_count', { route: 'unmatched', status: '404' }), 1);
  t.notRegex(created, /route="[^"]*(999999|no-such-route)/, 'paths never become label values');

  const done = await eventually(async () => {
    const text = await metrics();
    return sample(text, 'task_manager_tasks_completed_total') === 3 && text;
  }, 15_000);
  t.is(sample(done, 'task_manager_completion_lateness_seconds_count'), 3);
  t.true((sample(done, 'task_manager_completion_lateness_seconds_sum') ?? -1) >= 0, 'never early');
  t.true((sample(done, 'task_manager_worker_batch_duration_seconds_count') ?? 0) >= 1);
  t.is(sample(done, 'task_manager_worker_batch_failures_total'), 0);
});

test('with METRICS_TOKEN, /metrics wants it as a bearer token', async (t) => {
  const service = await startService({ metricsToken: 'a-metrics-token-of-some-length' });
  t.teardown(() => service.stop());
  const anonymous = await service.api.get('/metrics');
  t.is(anonymous.status, 401);
  t.is(anonymous.body.error.code, 'unauthorized');
  t.is((await service.api.get('/metrics', 'wrong-token-of-the-same-length')).status, 401);
  const allowed = await fetch(`${service.baseUrl}/metrics`, {
    headers: { authorization: 'Bearer a-metrics-token-of-some-length' },
  });
  t.is(allowed.status, 200);
  t.regex(allowed.headers.get('content-type') ?? '', /^text\/plain/);
});

test('a worker-only process serves /metrics and /healthz on METRICS_PORT, with the queue depth', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const web = await startService({ databaseUrl: database.url });
  t.teardown(() => web.stop());
  const port = await freePort();
  const worker = spawnService('worker', {
    DATABASE_URL: database.url,
    JWT_SECRET: TEST_SECRET,
    METRICS_PORT: String(port),
  });
  t.teardown(() => worker.child.kill('SIGKILL'));
  await worker.waitFor((line) => line.msg?.startsWith('metrics on'));
  const base = `http://127.0.0.1:${port}`;
  t.is((await fetch(`${base}/healthz`)).status, 200);
  t.is((await fetch(`${base}/tasks`)).status, 404, 'nothing else is served there');

  const { token } = await signUp(client(web.baseUrl));
  for (let i = 0; i < 2; i++) await web.api.post('/tasks', { title: `deferred ${i}` }, token); // due in 120 s
  const text = await eventually(async () => {
    const body = await (await fetch(`${base}/metrics`)).text();
    return (sampleWith(body, 'task_manager_queue_jobs', { state: 'deferred' }) ?? 0) >= 2 && body;
  }, 20_000);
  t.is(sampleWith(text, 'task_manager_queue_jobs', { state: 'total' }), 2);
  t.regex(text, /role="worker"/);
});
