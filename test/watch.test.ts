import http from 'node:http';
import test from 'ava';
import pg from 'pg';
import { createTestDatabase, query } from './helpers/db.ts';
import { eventually, listeningUrl, spawnService } from './helpers/process.ts';
import { client, type Reply, signUp, startService, TEST_SECRET } from './helpers/service.ts';
import { openStream } from './helpers/sse.ts';

/** Two streams side by side, once the server has seen the clients before them go (a place a gone one held). */
const twoStreams = (baseUrl: string, token: string) =>
  eventually(async () => {
    const pair = [
      await openStream(`${baseUrl}/tasks/events`, token),
      await openStream(`${baseUrl}/tasks/events`, token),
    ];
    if (pair.every((stream) => stream.response.status === 200)) return pair;
    for (const stream of pair) await stream.close();
    return false;
  }, 5_000);

const waitFor = (baseUrl: string, path: string, token: string, seconds: number) =>
  fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}`, prefer: `wait=${seconds}` } }).then(
    async (response) => ({ status: response.status, headers: response.headers, body: await response.json() }) as Reply,
  );

test('Prefer: wait answers as soon as the task completes, never before, with Preference-Applied', async (t) => {
  const service = await startService({ worker: true, delaySeconds: 2 });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 'watched' }, token)).body;
  const reply = await waitFor(service.baseUrl, `/tasks/${task.id}`, token, 30);
  const answeredAt = Date.now();
  t.is(reply.status, 200);
  t.is(reply.body.status, 'completed');
  t.is(reply.headers.get('preference-applied'), 'wait=30');
  t.regex(reply.headers.get('vary') ?? '', /Prefer/);
  const afterCommit = answeredAt - Date.parse(reply.body.completed_at);
  t.log(`answered ${afterCommit} ms after completed_at`);
  t.true(afterCommit >= 0, 'never before the completion');
});

test('Prefer: wait ends with a 404 when the task is deleted, and with the pending task when the time is up', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const doomed = (await service.api.post('/tasks', { title: 'doomed' }, token)).body;
  const waiting = waitFor(service.baseUrl, `/tasks/${doomed.id}`, token, 30);
  await eventually(async () => service.events.watching() === 1, 5_000); // the wait watches now
  const started = Date.now();
  t.is((await service.api.delete(`/tasks/${doomed.id}`, token)).status, 204);
  const deleted = await waiting;
  t.is(deleted.status, 404);
  t.true(Date.now() - started < 5_000);

  const pending = (await service.api.post('/tasks', { title: 'slow' }, token)).body;
  const before = Date.now();
  const timedOut = await waitFor(service.baseUrl, `/tasks/${pending.id}`, token, 1);
  t.is(timedOut.status, 200);
  t.is(timedOut.body.status, 'pending');
  t.is(timedOut.headers.get('preference-applied'), 'wait=1');
  t.true(Date.now() - before >= 1_000);
  const capped = await fetch(`${service.baseUrl}/tasks/${pending.id}`, {
    headers: { authorization: `Bearer ${token}`, prefer: 'wait=0, respond-async' },
  });
  t.is(capped.headers.get('preference-applied'), 'wait=0');
});

test('a reschedule is an event on the stream, and a wait goes on through it until the task completes', async (t) => {
  const service = await startService({ worker: true });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const stream = await openStream(`${service.baseUrl}/tasks/events`, token);
  t.teardown(() => stream.close());
  const task = (await service.api.post('/tasks', { title: 'moved', delay_seconds: 3600 }, token)).body;
  const waiting = waitFor(service.baseUrl, `/tasks/${task.id}`, token, 30);
  await eventually(async () => service.events.watching() === 2, 5_000); // the stream and the wait
  t.is((await service.api.patch(`/tasks/${task.id}`, { delay_seconds: 1 }, token)).status, 200);
  const completed = await waiting;
  t.is(completed.body.status, 'completed', 'the reschedule did not end the wait; the completion did');
  const events = await stream.until(3);
  t.deepEqual(
    events.map((event) => [event.event, event.data.task_id]),
    [
      ['created', task.id],
      ['rescheduled', task.id],
      ['completed', task.id],
    ],
  );
});

test("Prefer: wait on someone else's task is a 404 at once", async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const owner = await signUp(service.api);
  const stranger = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 'private' }, owner.token)).body;
  const started = Date.now();
  const reply = await waitFor(service.baseUrl, `/tasks/${task.id}`, stranger.token, 30);
  t.is(reply.status, 404);
  t.true(Date.now() - started < 2_000);
});

test('the stream delivers created, completed and deleted in order, and only the caller’s own', async (t) => {
  const service = await startService({ worker: true, delaySeconds: 1 });
  t.teardown(() => service.stop());
  const me = await signUp(service.api);
  const other = await signUp(service.api);
  const stream = await openStream(`${service.baseUrl}/tasks/events`, me.token);
  t.teardown(() => stream.close());
  t.is(stream.response.status, 200);
  t.regex(stream.response.headers.get('content-type') ?? '', /^text\/event-stream/);
  await service.api.post('/tasks', { title: 'not mine' }, other.token);
  const task = (await service.api.post('/tasks', { title: 'mine' }, me.token)).body;
  await stream.until(2); // created, then completed after about a second
  await service.api.delete(`/tasks/${task.id}`, me.token);
  const events = await stream.until(3);
  t.deepEqual(
    events.map((event) => [event.event, event.data.task_id, event.data.user_id]),
    [
      ['created', task.id, me.user.id],
      ['completed', task.id, me.user.id],
      ['deleted', task.id, me.user.id],
    ],
  );
  t.true(
    events.every((event) => /^\d+-\d+$/.test(event.id)),
    'every event has an id',
  );
  t.is(new Set(events.map((event) => event.id)).size, 3);
});

test('Last-Event-ID resumes without a gap or a repeat; an admin sees everyone, or one user with ?user_id=', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const admin = await signUp(service.api, 'admin');
  const user = await signUp(service.api);
  const first = await openStream(`${service.baseUrl}/tasks/events`, user.token);
  const a = (await service.api.post('/tasks', { title: 'a' }, user.token)).body;
  const [created] = await first.until(1);
  await first.close();
  // While disconnected: three more events.
  const b = (await service.api.post('/tasks', { title: 'b' }, user.token)).body;
  await service.api.patch(`/tasks/${a.id}`, { status: 'completed' }, user.token);
  await service.api.delete(`/tasks/${b.id}`, user.token);
  const resumed = await openStream(`${service.baseUrl}/tasks/events`, user.token, created?.id);
  t.teardown(() => resumed.close());
  await resumed.until(3);
  // Nothing more comes in between: a last event, and everything before it is the replay, once.
  const sentinel = (await service.api.post('/tasks', { title: 'sentinel' }, user.token)).body;
  await resumed.until(4);
  t.deepEqual(
    resumed.events.map((event) => [event.event, event.data.task_id]),
    [
      ['created', b.id],
      ['completed', a.id],
      ['deleted', b.id],
      ['created', sentinel.id],
    ],
    'nothing repeated, nothing missed',
  );

  const everyone = await openStream(`${service.baseUrl}/tasks/events`, admin.token, created?.id);
  t.teardown(() => everyone.close());
  t.is((await everyone.until(4)).length, 4);
  const onlyAdmin = await openStream(
    `${service.baseUrl}/tasks/events?user_id=${admin.user.id}`,
    admin.token,
    created?.id,
  );
  t.teardown(() => onlyAdmin.close());
  // None of the user's events reach the admin's own stream: the admin's next event is its first.
  const mine = (await service.api.post('/tasks', { title: "the admin's" }, admin.token)).body;
  await onlyAdmin.until(1);
  t.deepEqual(
    onlyAdmin.events.map((event) => event.data.task_id),
    [mine.id],
  );
  const forbidden = await service.api.get(`/tasks/events?user_id=${admin.user.id}`, user.token);
  t.is(forbidden.status, 403);
  const badId = await openStream(`${service.baseUrl}/tasks/events`, user.token, 'not-an-id');
  t.is(badId.response.status, 400);
});

test('the stream survives a cut of the listening connection: events during the cut arrive after it, once', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const stream = await openStream(`${service.baseUrl}/tasks/events`, token);
  t.teardown(() => stream.close());
  await service.api.post('/tasks', { title: 'before' }, token);
  await stream.until(1);
  // Cut the hub's LISTEN connection from the server side.
  const cut = await query<{ n: number }>(
    service.databaseUrl,
    `select count(pg_terminate_backend(pid))::int n from pg_stat_activity
     where datname = current_database() and query like 'listen %task_events%'`,
  );
  t.is(cut[0]?.n, 1);
  const during = (await service.api.post('/tasks', { title: 'during the cut' }, token)).body;
  // The hub is listening again (its reconnect reads what it missed); then one more task.
  await eventually(async () => {
    const [row] = await query<{ n: number }>(
      service.databaseUrl,
      `select count(*)::int n from pg_stat_activity where datname = current_database() and query like 'listen %task_events%'`,
    );
    return row?.n === 1;
  }, 15_000);
  const after = (await service.api.post('/tasks', { title: 'after' }, token)).body;
  await eventually(async () => stream.events.some((event) => event.data.task_id === after.id), 10_000);
  const ids = stream.events.map((event) => event.data.task_id);
  t.true(ids.includes(during.id), 'the event of the cut arrived');
  t.is(ids.at(-1), after.id);
  t.is(new Set(stream.events.map((event) => event.id)).size, stream.events.length, 'none repeated');
});

test('open waits and streams are capped per user (429), and a client that vanishes frees its place', async (t) => {
  const service = await startService({ watchPerUser: 2 });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 'x' }, token)).body;
  const streams = [];
  for (let i = 0; i < 2; i++) streams.push(await openStream(`${service.baseUrl}/tasks/events`, token));
  t.deepEqual(
    streams.map((stream) => stream.response.status),
    [200, 200],
  );
  const third = await waitFor(service.baseUrl, `/tasks/${task.id}`, token, 10);
  t.is(third.status, 429);
  t.is(third.body.error.code, 'rate_limited');
  // 50 clients come and go: each frees its place when it disconnects.
  await streams[0]?.close();
  for (let i = 0; i < 50; i++) {
    const stream = await eventually(async () => {
      const opened = await openStream(`${service.baseUrl}/tasks/events`, token);
      if (opened.response.status === 200) return opened;
      await opened.close();
      return false;
    }, 5_000);
    await stream.close();
  }
  await streams[1]?.close();
  // Both places are free again once the server has seen that client go (nothing kept a count, or a watcher,
  // for a client that is gone): two streams open side by side.
  const again = await twoStreams(service.baseUrl, token);
  t.deepEqual(
    again.map((stream) => stream.response.status),
    [200, 200],
  );
  for (const stream of again) await stream.close();

  // A long-poll whose client leaves frees its place too: afterwards, both places open again.
  await eventually(async () => service.events.watching() === 0, 5_000); // the streams above are gone
  const controller = new AbortController();
  const leaving = fetch(`${service.baseUrl}/tasks/${task.id}`, {
    headers: { authorization: `Bearer ${token}`, prefer: 'wait=60' },
    signal: controller.signal,
  }).catch(() => null);
  await eventually(async () => service.events.watching() === 1, 5_000); // the long-poll waits
  controller.abort();
  await leaving;
  const afterWait = await twoStreams(service.baseUrl, token);
  t.is(afterWait.length, 2);
  for (const stream of afterWait) await stream.close();
});

test('a stream ends at once on SIGTERM, and resumes across a restart of the web process without a gap', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const env = { DATABASE_URL: database.url, JWT_SECRET: TEST_SECRET, RATE_LIMIT_AUTH_PER_MINUTE: '1000' };
  const first = spawnService('web', env);
  t.teardown(() => first.child.kill('SIGKILL'));
  const api = client(await listeningUrl(first));
  const { token } = await signUp(api);
  const stream = await openStream(`${await listeningUrl(first)}/tasks/events`, token);
  const a = (await api.post('/tasks', { title: 'a' }, token)).body;
  const [created] = await stream.until(1);

  const signalled = Date.now();
  first.child.kill('SIGTERM');
  await stream.finished; // the server ended the stream: no heartbeat keeps the shutdown waiting
  t.is((await first.exited).code, 0);
  t.log(`stream ended and process exited ${Date.now() - signalled} ms after SIGTERM`);
  t.true(Date.now() - signalled < 5_000);

  // While no web process runs, tasks change (another process writes them).
  const other = await startService({ databaseUrl: database.url });
  t.teardown(() => other.stop());
  const b = (await other.api.post('/tasks', { title: 'b' }, token)).body;
  await other.api.delete(`/tasks/${a.id}`, token);

  const second = spawnService('web', env);
  t.teardown(() => second.child.kill('SIGKILL'));
  const resumed = await openStream(`${await listeningUrl(second)}/tasks/events`, token, created?.id);
  t.teardown(() => resumed.close());
  const c = (await client(await listeningUrl(second)).post('/tasks', { title: 'c' }, token)).body;
  await resumed.until(3);
  const last = (await client(await listeningUrl(second)).post('/tasks', { title: 'last' }, token)).body;
  await resumed.until(4); // a last event: whatever came before it is all there is
  t.deepEqual(
    resumed.events.map((event) => [event.event, event.data.task_id]),
    [
      ['created', b.id],
      ['deleted', a.id],
      ['created', c.id],
      ['created', last.id],
    ],
  );
});

test('events held back by an older transaction still running arrive, in order, once it ends', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const first = await openStream(`${service.baseUrl}/tasks/events`, token);
  await service.api.post('/tasks', { title: 'before' }, token);
  const [start] = await first.until(1);
  await first.close();

  // An older writing transaction, still open: events after it cannot be read in order yet.
  const older = new pg.Client(service.databaseUrl);
  await older.connect();
  t.teardown(() => older.end());
  await older.query('begin');
  await older.query('select pg_current_xact_id()');
  const held = (await service.api.post('/tasks', { title: 'held' }, token)).body;

  const reads = service.events.reads();
  const stream = await openStream(`${service.baseUrl}/tasks/events`, token, start?.id);
  t.teardown(() => stream.close());
  // The hub has looked at the table twice since (it keeps looking while an announced event is held back).
  await eventually(async () => service.events.reads() >= reads + 2, 5_000);
  t.deepEqual(stream.events, [], 'nothing is sent in front of a transaction that may still add an event');
  await older.query('commit'); // no change to any task follows: the stream must find them by itself
  const events = await stream.until(1);
  t.deepEqual(
    events.map((event) => [event.event, event.data.task_id]),
    [['created', held.id]],
  );
});

test('a few accounts cannot take every watch slot: a user with none open can always open one while any is free', async (t) => {
  const service = await startService({ watchPerUser: 10, watchPerProcess: 25 });
  t.teardown(() => service.stop());
  const streams: Awaited<ReturnType<typeof openStream>>[] = [];
  t.teardown(() => Promise.all(streams.map((stream) => stream.close())));
  const open = async (token: string) => {
    const stream = await openStream(`${service.baseUrl}/tasks/events`, token);
    streams.push(stream);
    return stream.response.status;
  };
  // Alice, Bob and Eve each try ten: together they reach three quarters of the slots (19 of 25), no more.
  const heavy: Record<string, number[]> = {};
  for (const name of ['alice', 'bob', 'eve']) {
    const { token } = await signUp(service.api);
    heavy[name] = [];
    for (let i = 0; i < 10; i++) heavy[name].push(await open(token));
  }
  const granted = Object.values(heavy)
    .flat()
    .filter((status) => status === 200).length;
  t.deepEqual(heavy.alice, Array(10).fill(200));
  t.true(granted <= 19, `${granted} granted to three users`);
  t.true(
    Object.values(heavy)
      .flat()
      .every((status) => status === 200 || status === 429),
  );
  // Carol, and then everyone else with none open, each get one, until the process is full.
  const newcomers: number[] = [];
  for (let i = granted; i < 25; i++) newcomers.push(await open((await signUp(service.api)).token));
  t.deepEqual(newcomers, Array(25 - granted).fill(200));
  // Full: now even a first one waits for a free slot.
  t.is(await open((await signUp(service.api)).token), 429);
});

test('an event stream and a wait end at their token’s expiry', async (t) => {
  // 8 s: signing up, opening the stream, creating the task and sending the wait all happen before it
  // expires, even on a loaded machine (3 s was too short beside another suite).
  const service = await startService({ expiresIn: 8 });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const issued = Date.now();
  const stream = await openStream(`${service.baseUrl}/tasks/events`, token);
  t.is(stream.response.status, 200);
  const task = (await service.api.post('/tasks', { title: 'pending for an hour' }, token)).body;
  const wait = await waitFor(service.baseUrl, `/tasks/${task.id}`, token, 60);
  t.is(wait.status, 200);
  t.is(wait.body.status, 'pending');
  t.regex(wait.headers.get('preference-applied') ?? '', /^wait=[0-8]$/);
  await stream.finished; // the server ends it
  const endedAfter = Date.now() - issued;
  t.log(`the stream ended ${endedAfter} ms after the token was issued (it lives 8 s)`);
  t.true(endedAfter < 10_000);
  t.is((await service.api.get('/me', token)).status, 401);
});

test('clients that leave while their stream is starting: nothing is written after its end, and each frees its place', async (t) => {
  const service = await startService({ watchPerUser: 2 });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const url = new URL('/tasks/events', service.baseUrl);
  // Each leaves a few milliseconds after its request is sent: before, during or after the stream's first
  // reads (nobody else watches, so each is the hub's first watcher and makes it read where to start). A
  // write to the stream after its end would be an uncaught error, and fail this file.
  for (let i = 0; i < 200; i++) {
    const request = http.get(url, { headers: { authorization: `Bearer ${token}` } });
    request.on('error', () => {}); // the socket is destroyed on purpose
    await new Promise((resolve) => setTimeout(resolve, i % 8));
    request.destroy();
  }
  await eventually(async () => service.events.watching() === 0, 5_000);
  // Both places are free: two streams open side by side, and deliver.
  const streams = await twoStreams(service.baseUrl, token);
  t.teardown(() => Promise.all(streams.map((stream) => stream.close())));
  const task = (await service.api.post('/tasks', { title: 'after the crowd' }, token)).body;
  for (const stream of streams) {
    const [created] = await stream.until(1);
    t.is(created?.event, 'created');
    t.is(created?.data.task_id, task.id);
  }
});
