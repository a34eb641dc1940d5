/**
 * One tenant cannot hurt another: one user's hanging webhook endpoints cost that user, not the others'
 * deliveries; an endpoint that fails for days is disabled with a reason. Real receivers on 127.0.0.1.
 */
import test from 'ava';
import { query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { startReceiver } from './helpers/receiver.ts';
import { signUp, startService } from './helpers/service.ts';

const DELIVERIES = 'select status, count(*)::int as n from webhook_deliveries where user_id = $1 group by status';

test('a user whose 10 endpoints hang 30 s: another user’s deliveries arrive within 2 s, and the slow ones all arrive once their receiver recovers', async (t) => {
  t.timeout(180_000);
  const service = await startService({ worker: true });
  t.teardown(() => service.stop());
  let hanging = true;
  const slow = await startReceiver(() => (hanging ? { delayMs: 30_000 } : {}));
  t.teardown(() => slow.close());
  const healthy = await startReceiver();
  t.teardown(() => healthy.close());
  const alice = await signUp(service.api);
  const bob = await signUp(service.api);
  for (let i = 0; i < 10; i++) {
    const reply = await service.api.post(
      '/webhooks',
      { url: slow.url(`/alice/${i}`), events: ['task.created'] },
      alice.token,
    );
    t.is(reply.status, 201);
  }
  t.is((await service.api.post('/webhooks', { url: healthy.url(), events: ['task.created'] }, bob.token)).status, 201);

  // A minute of a steady stream: Alice creates a task every half second (10 deliveries each, all hanging),
  // Bob one every 3 s; each of Bob's is timed from its event (the task's creation) to its arrival.
  const aliceTasks: number[] = [];
  const bobTasks = new Map<number, number>(); // task id → created_at
  const until = Date.now() + 60_000;
  let next = Date.now();
  for (let tick = 0; Date.now() < until; tick++) {
    aliceTasks.push((await service.api.post('/tasks', { title: `alice ${tick}` }, alice.token)).body.id);
    if (tick % 6 === 3) {
      const task = (await service.api.post('/tasks', { title: `bob ${tick}` }, bob.token)).body;
      bobTasks.set(task.id, Date.parse(task.created_at));
    }
    next += 500;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now()))); // the stream's pace
  }
  const arrivals = await eventually(async () => {
    const seen = new Map<number, number>();
    for (const request of healthy.received) seen.set(JSON.parse(request.body).data.id, request.at);
    return [...bobTasks.keys()].every((id) => seen.has(id)) && seen;
  }, 10_000);
  const latencies = [...bobTasks]
    .map(([id, createdAt]) => (arrivals.get(id) ?? Infinity) - createdAt)
    .sort((a, b) => a - b);
  t.log(
    `Bob: ${latencies.length} deliveries behind Alice's ${aliceTasks.length * 10}; latency p50 ${latencies[latencies.length >> 1]} ms, max ${latencies.at(-1)} ms; ` +
      `Alice's receiver saw ${slow.received.length} attempts`,
  );
  t.true(latencies.length >= 15);
  for (const latency of latencies) t.true(latency < 2_000, `a healthy delivery took ${latency} ms`);
  // Alice's deliveries were attempted meanwhile, but never more at once than her share of the slots.
  t.true(slow.received.length > 0);

  // Her receiver recovers: every one of her deliveries arrives. (Their retries are brought forward to now,
  // as the hours of backoff would have done.)
  hanging = false;
  await query(
    service.databaseUrl,
    `update pgboss.job set start_after = now() where name = 'deliver-webhook' and state = 'retry'`,
  );
  await eventually(async () => {
    const rows = await query<{ status: string; n: number }>(service.databaseUrl, DELIVERIES, [alice.user.id]);
    return rows.length === 1 && rows[0]?.status === 'succeeded' && rows[0].n === aliceTasks.length * 10;
  }, 90_000);
  const delivered = new Set(slow.received.map((r) => `${r.path} ${JSON.parse(r.body).data.id}`));
  t.is(delivered.size, aliceTasks.length * 10, 'each of her deliveries reached its endpoint');
});

test('an endpoint that failed every attempt for the configured span is disabled with a reason; enabling it starts afresh', async (t) => {
  const service = await startService({ worker: true, disableWebhooksAfterSeconds: 2 });
  t.teardown(() => service.stop());
  let status = 500;
  const receiver = await startReceiver(() => ({ status }));
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const endpoint = (await service.api.post('/webhooks', { url: receiver.url(), events: ['task.created'] }, token)).body;
  t.is(endpoint.disabled_reason, null);

  // One failure, then a success: the streak ends, nothing is disabled.
  status = 500;
  await service.api.post('/tasks', { title: 'fails once' }, token);
  await eventually(async () => receiver.received.length >= 1, 10_000);
  status = 200;
  await eventually(async () => {
    const [row] = await query<{ failing_since: Date | null; delivered: number }>(
      service.databaseUrl,
      `select failing_since, (select count(*)::int from webhook_deliveries where status = 'succeeded') as delivered
       from webhook_endpoints where id = $1`,
      [endpoint.id],
    );
    return row?.delivered === 1 && row.failing_since === null;
  }, 15_000);
  t.like((await service.api.get(`/webhooks/${endpoint.id}`, token)).body, { enabled: true, disabled_reason: null });

  // Now every attempt fails: once the first failure is 2 s old, the next failure disables the endpoint.
  status = 503;
  await service.api.post('/tasks', { title: 'fails for good' }, token);
  const disabled = await eventually(async () => {
    const reply = await service.api.get(`/webhooks/${endpoint.id}`, token);
    return reply.body.enabled === false && reply.body;
  }, 30_000);
  t.regex(
    disabled.disabled_reason,
    /^every attempt failed since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(the last: answered 503\)$/,
  );

  // The owner turns it back on: the reason goes, and the 5-day count starts again.
  const enabled = await service.api.patch(`/webhooks/${endpoint.id}`, { enabled: true }, token);
  t.like(enabled.body, { enabled: true, disabled_reason: null });
  const [row] = await query<{ failing_since: Date | null }>(
    service.databaseUrl,
    'select failing_since from webhook_endpoints where id = $1',
    [endpoint.id],
  );
  t.is(row?.failing_since, null);
  const off = await service.api.patch(`/webhooks/${endpoint.id}`, { enabled: false }, token);
  t.like(off.body, { enabled: false, disabled_reason: 'disabled by its owner' });
});
