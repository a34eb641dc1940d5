/**
 * Webhooks survive kill -9: events not yet relayed are relayed after a restart, and deliveries in flight
 * are attempted again. Delivery is at least once: the tests count the duplicates a crash causes.
 */
import test from 'ava';
import { createTestDatabase, query } from './helpers/db.ts';
import { eventually, listeningUrl, spawnService } from './helpers/process.ts';
import { type Answer, startReceiver } from './helpers/receiver.ts';
import { client, signUp, TEST_SECRET } from './helpers/service.ts';

const serviceEnv = (databaseUrl: string) => ({
  DATABASE_URL: databaseUrl,
  RATE_LIMIT_AUTH_PER_MINUTE: '1000',
  JWT_SECRET: TEST_SECRET,
  TASK_COMPLETION_DELAY_SECONDS: '3600',
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
});

/** Task ids announced, and how many requests repeated a webhook-id already received. */
const tally = (received: { body: string; headers: Record<string, unknown> }[]) => {
  const ids = new Set(received.map((request) => JSON.parse(request.body).data.id as number));
  const deliveries = new Set(received.map((request) => request.headers['webhook-id']));
  return { tasks: ids, duplicates: received.length - deliveries.size };
};

/** Waits until no delivery is pending and no delivery job runs or waits: nothing more will be sent. */
const deliveriesSettled = (url: string) =>
  eventually(async () => {
    const [row] = await query<{ n: number }>(
      url,
      `select (select count(*) from webhook_deliveries where status = 'pending')
            + (select count(*) from pgboss.job where name = 'deliver-webhook' and state in ('created', 'retry', 'active'))
              as n`,
    );
    return Number(row?.n) === 0;
  }, 15_000);

test('kill -9 of the whole service, with events not yet relayed: after a restart every event is delivered', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const first = spawnService('all', serviceEnv(database.url));
  t.teardown(() => first.child.kill('SIGKILL'));
  const api = client(await listeningUrl(first));
  const { token, user } = await signUp(api);
  t.is((await api.post('/webhooks', { url: receiver.url(), events: ['task.created'] }, token)).status, 201);
  const created: number[] = [];
  for (let i = 0; i < 20; i++) created.push((await api.post('/tasks', { title: `before ${i}` }, token)).body.id);
  first.child.kill('SIGKILL');
  await first.exited;
  const beforeRestart = receiver.received.length;
  // While nothing runs, an operator's SQL creates more tasks: their events wait, unrelayed.
  const rows = await query<{ id: number }>(
    database.url,
    `insert into tasks (user_id, title, due_at)
     select $1, 'while down ' || g, now() + interval '1 hour' from generate_series(1, 20) g returning id::int`,
    [user.id],
  );
  created.push(...rows.map((row) => row.id));

  const second = spawnService('all', serviceEnv(database.url));
  t.teardown(() => second.child.kill('SIGKILL'));
  await listeningUrl(second);
  await eventually(async () => tally(receiver.received).tasks.size === created.length, 30_000);
  await deliveriesSettled(database.url); // nothing more will be sent: every duplicate is counted
  const { tasks, duplicates } = tally(receiver.received);
  t.deepEqual(
    [...tasks].sort((a, b) => a - b),
    created.sort((a, b) => a - b),
  );
  t.log(
    `${beforeRestart} delivered before the kill; after the restart all ${created.length}, with ${duplicates} duplicates`,
  );
});

test('kill -9 while deliveries are in flight: they are attempted again after a restart', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  let slow = true;
  const receiver = await startReceiver((): Answer => (slow ? { hang: true } : {}));
  t.teardown(() => receiver.close());
  // All ten in flight to one endpoint at once: its owner's share and the endpoint's limit allow ten here.
  const wide = {
    ...serviceEnv(database.url),
    WEBHOOK_DELIVERY_PER_ENDPOINT: '10',
    WEBHOOK_DELIVERY_SLOTS_PER_USER: '10',
  };
  const first = spawnService('all', wide);
  t.teardown(() => first.child.kill('SIGKILL'));
  const api = client(await listeningUrl(first));
  const { token } = await signUp(api);
  t.is((await api.post('/webhooks', { url: receiver.url(), events: ['task.created'] }, token)).status, 201);
  const created: number[] = [];
  for (let i = 0; i < 10; i++) created.push((await api.post('/tasks', { title: `in flight ${i}` }, token)).body.id);
  await eventually(async () => receiver.received.length >= 10, 15_000); // every one is being attempted
  first.child.kill('SIGKILL');
  await first.exited;
  const inFlight = receiver.received.length;
  slow = false;

  const restarted = Date.now();
  const second = spawnService('all', serviceEnv(database.url));
  t.teardown(() => second.child.kill('SIGKILL'));
  await listeningUrl(second);
  await eventually(async () => {
    const [row] = await query<{ n: number }>(
      database.url,
      `select count(*)::int n from webhook_deliveries where status = 'succeeded'`,
    );
    return row?.n === created.length;
  }, 45_000);
  const { tasks, duplicates } = tally(receiver.received);
  t.deepEqual(
    [...tasks].sort((a, b) => a - b),
    created.sort((a, b) => a - b),
  );
  t.log(
    `${inFlight} attempts in flight at the kill; all ${created.length} delivered ${Date.now() - restarted} ms after the ` +
      `restart, with ${duplicates} duplicate requests (the unanswered ones, sent again)`,
  );
});
