/**
 * Webhooks end to end, with real receivers on 127.0.0.1: signed deliveries from the transactional outbox,
 * retries with pg-boss's backoff, 410, timeouts, redirects, ownership, and the address guard at delivery.
 */
import test from 'ava';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { onBossDb } from '../src/db/connection.ts';
import { purgeOldTaskEvents } from '../src/domain/retention.ts';
import { createTestDatabase, query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { startReceiver } from './helpers/receiver.ts';
import { type Reply, signUp, startService, TEST_TIMING, type TestService } from './helpers/service.ts';

let service: TestService;
test.before(async () => {
  service = await startService({ worker: true, delaySeconds: 1 });
});
test.after.always(() => service?.stop());

const register = async (token: string, url: string, extra: Record<string, unknown> = {}) => {
  const reply = await service.api.post('/webhooks', { url, ...extra }, token);
  if (reply.status !== 201) throw new Error(`POST /webhooks: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body as { id: number; secret: string; url: string; events: string[]; enabled: boolean };
};
const deliveriesOf = async (token: string, endpointId: number) =>
  (await service.api.get(`/webhooks/${endpointId}/deliveries`, token)).body as {
    id: string;
    status: string;
    attempts: number;
    last_status_code: number | null;
    last_error: string | null;
    last_response: string | null;
  }[];

/**
 * Nothing more will be sent for these tasks: the relay's place is past every one of their events, and (with
 * an endpoint) none of its deliveries is still pending. What a test waits for before it asserts that
 * something did not happen.
 */
async function settled(taskIds: number[], endpoint?: { token: string; id: number }) {
  await eventually(async () => {
    const [row] = await query<{ passed: boolean }>(
      service.databaseUrl,
      `select exists (select 1 from task_events where task_id = any($1))
          and not exists (select 1 from task_events e, webhook_relay r
                          where e.task_id = any($1) and (e.tx_id, e.id) > (r.tx, r.event_id)) as passed`,
      [taskIds],
    );
    if (!row?.passed) return false;
    return !endpoint || (await deliveriesOf(endpoint.token, endpoint.id)).every((d) => d.status !== 'pending');
  }, 20_000);
}

test('a completed task reaches its endpoint once, with the signed body the contract gives', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const endpoint = await register(token, receiver.url());
  t.deepEqual(endpoint.events, ['task.completed']);
  t.regex(endpoint.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  const task = (await service.api.post('/tasks', { title: 'hooked', delay_seconds: 1 }, token)).body;

  const [request] = await eventually(async () => receiver.received.length > 0 && receiver.received, 20_000);
  if (!request) throw new Error('nothing received');
  const payload = new Webhook(endpoint.secret).verify(request.body, request.headers as Record<string, string>) as any;
  const completed = (await service.api.get(`/tasks/${task.id}`, token)).body;
  t.deepEqual(JSON.parse(request.body), payload);
  t.deepEqual(Object.keys(payload), ['type', 'timestamp', 'data']);
  t.is(payload.type, 'task.completed');
  t.deepEqual(payload.data, completed, 'data is the task as the API shows it');
  t.is(request.headers['content-type'], 'application/json');
  t.regex(request.headers['user-agent'] ?? '', /^task-manager\/\d+\.\d+\.\d+ \(webhooks\)$/);
  t.regex(String(request.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);
  await settled([task.id], { token, id: endpoint.id }); // recorded as succeeded: no retry will come
  t.is(receiver.received.length, 1, 'delivered once');
  const [delivery] = await deliveriesOf(token, endpoint.id);
  t.like(delivery, { id: request.headers['webhook-id'], status: 'succeeded', attempts: 1, last_status_code: 200 });
});

test('a receiver that answers 500 twice, then 200: delivered on the third attempt, under one webhook-id', async (t) => {
  const receiver = await startReceiver((_, count) => (count <= 2 ? { status: 500, body: 'not yet' } : {}));
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const endpoint = await register(token, receiver.url(), { events: ['task.created'] });
  await service.api.post('/tasks', { title: 'flaky receiver' }, token);
  await eventually(async () => (await deliveriesOf(token, endpoint.id))[0]?.status === 'succeeded', 30_000);
  t.is(receiver.received.length, 3);
  t.is(new Set(receiver.received.map((request) => request.headers['webhook-id'])).size, 1, 'the same webhook-id');
  const [delivery] = await deliveriesOf(token, endpoint.id);
  t.like(delivery, { status: 'succeeded', attempts: 3, last_status_code: 200, last_error: null });
  for (const request of receiver.received) {
    new Webhook(endpoint.secret).verify(request.body, request.headers as Record<string, string>); // each signed anew
  }
});

test('a receiver that is down for two attempts, then up: delivered', async (t) => {
  const first = await startReceiver();
  const port = first.port;
  await first.close(); // connections to it are refused now
  const { token } = await signUp(service.api);
  const endpoint = await register(token, `http://127.0.0.1:${port}/hook`, { events: ['task.created'] });
  await service.api.post('/tasks', { title: 'receiver down' }, token);
  await eventually(async () => ((await deliveriesOf(token, endpoint.id))[0]?.attempts ?? 0) >= 1, 10_000);
  const [failing] = await deliveriesOf(token, endpoint.id);
  t.like(failing, { status: 'pending', last_status_code: null });
  t.regex(failing?.last_error ?? '', /ECONNREFUSED/);
  // Down across a second attempt too (pg-boss's backoff: about a second), then up.
  await eventually(async () => ((await deliveriesOf(token, endpoint.id))[0]?.attempts ?? 0) >= 2, 20_000);
  const receiver = await startReceiver(() => ({}), port);
  t.teardown(() => receiver.close());
  await eventually(async () => (await deliveriesOf(token, endpoint.id))[0]?.status === 'succeeded', 40_000);
  t.is(receiver.received.length, 1);
});

test('a 410 disables the endpoint: no more attempts, and it says enabled: false', async (t) => {
  const receiver = await startReceiver(() => ({ status: 410, body: 'gone' }));
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const endpoint = await register(token, receiver.url(), { events: ['task.created'] });
  await service.api.post('/tasks', { title: 'gone' }, token);
  await eventually(async () => (await deliveriesOf(token, endpoint.id))[0]?.status === 'failed', 20_000);
  t.like((await service.api.get(`/webhooks/${endpoint.id}`, token)).body, { enabled: false });
  const [delivery] = await deliveriesOf(token, endpoint.id);
  t.like(delivery, { attempts: 1, last_status_code: 410, last_response: 'gone' });
  const afterGone = (await service.api.post('/tasks', { title: 'after gone' }, token)).body;
  await settled([afterGone.id], { token, id: endpoint.id });
  t.is(receiver.received.length, 1, 'nothing more is sent to a disabled endpoint');
});

test('a receiver that never answers: the attempt ends at 10 s', async (t) => {
  const receiver = await startReceiver(() => ({ hang: true }));
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const endpoint = await register(token, receiver.url(), { events: ['task.created'] });
  await service.api.post('/tasks', { title: 'silence' }, token);
  const sent = await eventually(async () => receiver.received[0], 10_000);
  const failed = await eventually(async () => {
    const [delivery] = await deliveriesOf(token, endpoint.id);
    return delivery?.attempts === 1 && delivery;
  }, 20_000);
  const ended = Date.now() - sent.at;
  t.log(`the attempt was recorded ${ended} ms after the request arrived`);
  t.true(ended >= 9_500 && ended < 13_000, `${ended} ms`);
  t.like(failed, { status: 'pending', last_status_code: null, last_error: 'timed out after 10 s' });
  await service.api.delete(`/webhooks/${endpoint.id}`, token);
});

test('a redirect is a failed attempt, never followed', async (t) => {
  const target = await startReceiver();
  t.teardown(() => target.close());
  const receiver = await startReceiver(() => ({ status: 302, headers: { location: target.url('/elsewhere') } }));
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const endpoint = await register(token, receiver.url(), { events: ['task.created'] });
  await service.api.post('/tasks', { title: 'moved' }, token);
  await eventually(async () => ((await deliveriesOf(token, endpoint.id))[0]?.attempts ?? 0) >= 1, 10_000);
  t.like((await deliveriesOf(token, endpoint.id))[0], { status: 'pending', last_status_code: 302 });
  t.is(target.received.length, 0); // a followed redirect would have reached it within that attempt
  await service.api.delete(`/webhooks/${endpoint.id}`, token);
});

test('a rolled-back change sends nothing; only subscribed events and only the owner’s tasks are sent', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const { token, user } = await signUp(service.api);
  const other = await signUp(service.api);
  const endpoint = await register(token, receiver.url(), { events: ['task.created', 'task.deleted'] });
  const client = new pg.Client(service.databaseUrl);
  await client.connect();
  t.teardown(() => client.end());
  await client.query('begin');
  await client.query(
    `insert into tasks (user_id, title, due_at) values ($1, 'rolled back', now() + interval '1 hour')`,
    [user.id],
  );
  await client.query('rollback');
  await service.api.post('/tasks', { title: 'not mine' }, other.token);
  const kept = (await service.api.post('/tasks', { title: 'kept' }, token)).body;
  await service.api.patch(`/tasks/${kept.id}`, { delay_seconds: 60 }, token); // rescheduled: not a webhook event
  await service.api.delete(`/tasks/${kept.id}`, token);
  await eventually(async () => receiver.received.length >= 2, 20_000);
  await settled([kept.id], { token, id: endpoint.id });
  // Deliveries run concurrently, so they may arrive in any order: receivers order them by `timestamp`.
  const bodies = receiver.received
    .map((request) => JSON.parse(request.body))
    .sort((a, b) => a.timestamp.localeCompare(b.timestamp) || a.type.localeCompare(b.type));
  t.deepEqual(
    bodies.map((body) => [body.type, body.data.id]),
    [
      ['task.created', kept.id],
      ['task.deleted', kept.id],
    ],
  );
  t.deepEqual(bodies[1].data, { id: kept.id, user_id: user.id });
});

test('a deleted endpoint gets nothing more; someone else’s endpoint and deliveries are 404', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const stranger = await signUp(service.api);
  const endpoint = await register(token, receiver.url(), { events: ['task.created'] });
  await service.api.post('/tasks', { title: 'one' }, token);
  await eventually(async () => receiver.received.length === 1, 20_000);
  const [delivery] = await deliveriesOf(token, endpoint.id);
  const attempts: Reply[] = [
    await service.api.get(`/webhooks/${endpoint.id}`, stranger.token),
    await service.api.patch(`/webhooks/${endpoint.id}`, { enabled: false }, stranger.token),
    await service.api.post(`/webhooks/${endpoint.id}/rotate-secret`, undefined, stranger.token),
    await service.api.get(`/webhooks/${endpoint.id}/deliveries`, stranger.token),
    await service.api.post(`/webhooks/${endpoint.id}/deliveries/${delivery?.id}/retry`, undefined, stranger.token),
    await service.api.delete(`/webhooks/${endpoint.id}`, stranger.token),
  ];
  for (const reply of attempts) {
    t.is(reply.status, 404);
    t.is(reply.body.error.code, 'not_found');
  }
  t.deepEqual((await service.api.get('/webhooks', stranger.token)).body, []);
  t.is((await service.api.delete(`/webhooks/${endpoint.id}`, token)).status, 204);
  const two = (await service.api.post('/tasks', { title: 'two' }, token)).body;
  await settled([two.id]);
  t.is(receiver.received.length, 1);
});

test('rotating the secret: both secrets sign for a while; a failed delivery can be retried by hand', async (t) => {
  let failing = true;
  const receiver = await startReceiver(() => (failing ? { status: 410 } : {}));
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const endpoint = await register(token, receiver.url(), { events: ['task.created'] });
  await service.api.post('/tasks', { title: 'will fail' }, token);
  await eventually(async () => (await deliveriesOf(token, endpoint.id))[0]?.status === 'failed', 20_000);
  const rotated = await service.api.post(`/webhooks/${endpoint.id}/rotate-secret`, undefined, token);
  t.is(rotated.status, 200);
  t.regex(rotated.body.secret, /^whsec_/);
  t.not(rotated.body.secret, endpoint.secret);
  t.false('secret' in (await service.api.get(`/webhooks/${endpoint.id}`, token)).body, 'never shown again');
  failing = false;
  t.is((await service.api.patch(`/webhooks/${endpoint.id}`, { enabled: true }, token)).status, 200);
  const [delivery] = await deliveriesOf(token, endpoint.id);
  const retried = await service.api.post(`/webhooks/${endpoint.id}/deliveries/${delivery?.id}/retry`, undefined, token);
  t.is(retried.status, 202);
  t.like(retried.body, { id: delivery?.id, status: 'pending' });
  await eventually(async () => (await deliveriesOf(token, endpoint.id))[0]?.status === 'succeeded', 20_000);
  const last = receiver.received.at(-1);
  if (!last) throw new Error('nothing received');
  t.is(String(last.headers['webhook-signature']).split(' ').length, 2, 'signed by the new and the old secret');
  for (const secret of [rotated.body.secret, endpoint.secret]) {
    new Webhook(secret).verify(last.body, last.headers as Record<string, string>);
  }
  const again = await service.api.post(`/webhooks/${endpoint.id}/deliveries/${delivery?.id}/retry`, undefined, token);
  t.is(again.status, 409, 'only a failed delivery can be retried');
});

test('endpoint rules: http(s) only, no credentials, at most 2000 characters, at most 10 per user', async (t) => {
  const { token } = await signUp(service.api);
  for (const url of [
    'ftp://example.com/x',
    'not a url',
    'http://user:pw@127.0.0.1/x',
    `http://127.0.0.1/${'x'.repeat(2000)}`,
  ]) {
    const reply = await service.api.post('/webhooks', { url }, token);
    t.is(reply.status, 400, url.slice(0, 40));
    t.deepEqual(
      reply.body.error.details.map((detail: { field: string }) => detail.field),
      ['url'],
    );
  }
  const bad = await service.api.post('/webhooks', { url: 'http://127.0.0.1/x', events: ['task.updated'] }, token);
  t.deepEqual(
    bad.body.error.details.map((detail: { field: string }) => detail.field),
    ['events.0'],
  );
  const made = await Promise.all(
    Array.from({ length: 11 }, (_, i) => service.api.post('/webhooks', { url: `http://127.0.0.1:9/${i}` }, token)),
  );
  t.is(made.filter((reply) => reply.status === 201).length, 10);
  t.is(made.filter((reply) => reply.status === 409).length, 1);
  const [{ n } = { n: 0 }] = await query<{ n: number }>(
    service.databaseUrl,
    'select count(*)::int n from webhook_endpoints where user_id = (select id from users where id = $1)',
    [(await service.api.get('/me', token)).body.id],
  );
  t.is(n, 10);
});

test('with private networks not allowed, every loopback spelling is refused at registration and at delivery', async (t) => {
  const strict = await startService({ worker: true, webhooks: { allowPrivateNetworks: false, allowHttp: true } });
  t.teardown(() => strict.stop());
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const { token, user } = await signUp(strict.api);
  const port = receiver.port;
  const spellings = [
    `http://127.0.0.1:${port}/`,
    `http://127.1:${port}/`,
    `http://0x7f000001:${port}/`,
    `http://2130706433:${port}/`,
    `http://0177.0.0.1:${port}/`,
    `http://[::1]:${port}/`,
    `http://[::ffff:127.0.0.1]:${port}/`,
    `http://localhost:${port}/`,
  ];
  for (const url of spellings) {
    const reply = await strict.api.post('/webhooks', { url }, token);
    t.is(reply.status, 400, url);
    t.is(reply.body.error.details[0].field, 'url', url);
    t.regex(reply.body.error.details[0].message, /non-public address/, url);
  }
  // Endpoints that got in some other way (a name that resolved elsewhere at registration, an operator's
  // SQL) are refused at every attempt, by the address the connection would have used.
  for (const url of [`http://localhost:${port}/`, `http://127.1:${port}/`]) {
    await query(
      strict.databaseUrl,
      `insert into webhook_endpoints (user_id, url, events, secret) values ($1, $2, '{task.created}', 'whsec_c2VjcmV0')`,
      [user.id, url],
    );
  }
  await strict.api.post('/tasks', { title: 'to loopback' }, token);
  const rows = await eventually(async () => {
    const found = await query<{ attempts: number; status: string; last_error: string | null; job_state: string }>(
      strict.databaseUrl,
      `select d.attempts, d.status, d.last_error, j.state as job_state
       from webhook_deliveries d join pgboss.job j on j.data->>'deliveryId' = d.id::text
       where d.attempts > 0`,
    );
    // The attempt is recorded first, then its job settled: wait for both.
    return found.length === 2 && found.every((row) => row.job_state !== 'active') && found;
  }, 20_000);
  for (const row of rows) {
    t.regex(row.last_error ?? '', /non-public address \((127\.0\.0\.1|::1): loopback \(RFC 1122\)/);
    // No later attempt can do better: failed at once, for good, not retried for a day.
    t.like(row, { attempts: 1, status: 'failed', job_state: 'completed' });
  }
  t.is(receiver.received.length, 0, 'nothing reached the loopback receiver');
});

test('the 24-hour purge of task events keeps every event the relay has not passed', async (t) => {
  // One transaction holds the relay's place (the worker's relay skips it meanwhile) and runs the purge's own
  // statement, so nothing else can move the place under the test; it is rolled back at the end.
  const { user } = await signUp(service.api);
  const client = new pg.Client(service.databaseUrl);
  await client.connect();
  t.teardown(() => client.end());
  await client.query('begin');
  const { rows } = await client.query<{ tx: string; id: string }>(
    `insert into task_events (user_id, task_id, type, at) values ($1, 0, 'created', now() - interval '25 hours')
     returning tx_id::text as tx, id::text`,
    [user.id],
  );
  const old = rows[0];
  const left = async () =>
    (await client.query<{ n: number }>('select count(*)::int n from task_events where id = $1', [old?.id])).rows[0]?.n;
  await client.query(`update webhook_relay set tx = '1'::xid8, event_id = 0`); // as if it had stopped long ago
  const inTransaction = onBossDb({ executeSql: (text, values) => client.query(text, values) });
  await purgeOldTaskEvents(inTransaction);
  t.is(await left(), 1, 'not purged while the relay has not passed it');
  await client.query('update webhook_relay set tx = $1::xid8, event_id = $2', [old?.tx, old?.id]);
  await purgeOldTaskEvents(inTransaction);
  t.is(await left(), 0, 'purged once the relay has passed it');
  await client.query('rollback');
});

test('a 429 with Retry-After waits that long before the next attempt, longer than the backoff would', async (t) => {
  const receiver = await startReceiver((_, count) =>
    count === 1 ? { status: 429, headers: { 'retry-after': '3' }, body: 'slow down' } : {},
  );
  t.teardown(() => receiver.close());
  const { token } = await signUp(service.api);
  const endpoint = await register(token, receiver.url(), { events: ['task.created'] });
  await service.api.post('/tasks', { title: 'patience' }, token);
  await eventually(async () => (await deliveriesOf(token, endpoint.id))[0]?.attempts === 1, 10_000);
  const [waiting] = (await service.api.get(`/webhooks/${endpoint.id}/deliveries`, token)).body;
  const first = receiver.received[0];
  if (!first) throw new Error('nothing received');
  t.like(waiting, { status: 'pending', last_status_code: 429, last_response: 'slow down' });
  // The first backoff alone is at most 1 s; Retry-After asked for 3.
  t.true(Date.parse(waiting.next_attempt_at) - first.at >= 2_900, `next attempt at ${waiting.next_attempt_at}`);
  await eventually(async () => (await deliveriesOf(token, endpoint.id))[0]?.status === 'succeeded', 20_000);
  const gap = (receiver.received[1]?.at ?? 0) - first.at;
  t.log(`the second attempt came ${gap} ms after the first`);
  t.true(gap >= 2_900, `${gap} ms`);
});

test('an event committed behind a transaction still running elsewhere on the server is delivered as soon as that ends, not at the relay’s next poll', async (t) => {
  // The endpoint exists before the worker starts, so its relay heeds every notification from the start; its
  // poll is a minute, so only the relay's looking again can deliver within the test.
  const web = await startService();
  t.teardown(() => web.stop());
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const { token } = await signUp(web.api);
  t.is((await web.api.post('/webhooks', { url: receiver.url(), events: ['task.created'] }, token)).status, 201);
  const worker = await startService({
    databaseUrl: web.databaseUrl,
    worker: true,
    timing: { ...TEST_TIMING, relayIntervalMs: 60_000 },
  });
  t.teardown(() => worker.stop());

  // A write transaction on another database of the same server (transaction ids are the server's), begun
  // before the task's: the relay may not pass the task's event until it ends, whatever the database.
  const other = await createTestDatabase();
  t.teardown(() => other.drop());
  const blocker = new pg.Client(other.url);
  await blocker.connect();
  t.teardown(() => blocker.end());
  await blocker.query('begin');
  await blocker.query('select pg_current_xact_id()');
  t.is((await web.api.post('/tasks', { title: 'behind a long write' }, token)).status, 201);
  // The other transaction's length (the case under test, not a wait for an event): the relay is nudged
  // 25 ms after the task's commit and finds the event waiting.
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(receiver.received.length, 0, 'nothing relayed past a transaction still running');
  await blocker.query('commit');
  const committedAt = Date.now();
  const [delivery] = await eventually(async () => receiver.received.length > 0 && receiver.received, 20_000);
  const after = (delivery?.at ?? Infinity) - committedAt;
  t.log(`delivered ${after} ms after the older transaction committed (the relay's poll: 60 s)`);
  t.true(after < 5_000, `${after} ms`);
});
