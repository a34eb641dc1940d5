/**
 * What a user and an admin can do with accounts: change the password, log out everywhere, leave, and
 * administer users, with every token issued before a logout or a password change refused from then on.
 */
import { createHash } from 'node:crypto';
import test from 'ava';
import { query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { type Reply, signUp, startService, type TestService } from './helpers/service.ts';
import { openStream } from './helpers/sse.ts';

let service: TestService;
let admin: Awaited<ReturnType<typeof signUp>>;
test.before(async () => {
  service = await startService({ worker: true });
  admin = await signUp(service.api, 'admin');
});
test.after.always(() => service?.stop());

/** A JSON request with a body on any method (the helper's `delete` sends none). */
const send = (method: string, path: string, body: unknown, token: string) =>
  service.api.raw(method, path, {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });

const login = async (email: string, password = 'password123') =>
  (await service.api.post('/login', { email, password })).body.token as string;

const refusedEverywhere = async (t: any, token: string, label: string) => {
  for (const reply of [
    await service.api.get('/me', token),
    await service.api.get('/tasks', token),
    await service.api.post('/tasks', { title: 'x' }, token),
    await service.api.get('/tasks/events', token),
  ]) {
    t.is(reply.status, 401, label);
    t.is(reply.body.error.code, 'unauthorized', label);
  }
};

test('POST /logout ends every token issued before it, even in the same second; a new login works', async (t) => {
  const { user, token } = await signUp(service.api);
  const second = await login(user.email); // another session of the same user
  t.is((await service.api.post('/logout', undefined, token)).status, 204);
  await refusedEverywhere(t, token, 'the token that logged out');
  await refusedEverywhere(t, second, 'another token of the same user');
  t.regex((await service.api.get('/me', token)).body.error.message, /revoked/);
  // Signed right after the logout, most likely within the same second as the tokens it ended.
  const fresh = await login(user.email);
  t.is((await service.api.get('/me', fresh)).status, 200);
  t.is((await service.api.post('/tasks', { title: 'after logout' }, fresh)).status, 201);
});

test('POST /me/password: a wrong current password is a 401 that changes nothing; the right one ends every older token', async (t) => {
  const { user, token } = await signUp(service.api);
  const wrong = await send(
    'POST',
    '/me/password',
    { current_password: 'nope-nope', new_password: 'newpassword1' },
    token,
  );
  t.is(wrong.status, 401);
  t.is(wrong.body.error.code, 'unauthorized');
  t.is((await service.api.get('/me', token)).status, 200, 'the token still works after a wrong attempt');
  const tooShort = await send(
    'POST',
    '/me/password',
    { current_password: 'password123', new_password: 'short' },
    token,
  );
  t.is(tooShort.status, 400);
  t.deepEqual(
    tooShort.body.error.details.map((detail: { field: string }) => detail.field),
    ['new_password'],
  );

  const changed = await send(
    'POST',
    '/me/password',
    { current_password: 'password123', new_password: 'newpassword1' },
    token,
  );
  t.is(changed.status, 204);
  await refusedEverywhere(t, token, 'a token from before the change');
  t.is((await service.api.post('/login', { email: user.email, password: 'password123' })).status, 401);
  const fresh = await login(user.email, 'newpassword1');
  t.is((await service.api.get('/me', fresh)).status, 200);
});

test('an open event stream and a Prefer: wait of a user who logs out end within a second', async (t) => {
  const { user, token } = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 'watched', delay_seconds: 3600 }, token)).body;
  const watching = service.events.watching();
  const stream = await openStream(`${service.baseUrl}/tasks/events`, token);
  t.teardown(() => stream.close());
  t.is(stream.response.status, 200);
  const waiting = fetch(`${service.baseUrl}/tasks/${task.id}`, {
    headers: { authorization: `Bearer ${token}`, prefer: 'wait=60' },
  }).then(async (response) => ({ status: response.status, body: await response.json(), at: Date.now() }));
  await eventually(async () => service.events.watching() >= watching + 2, 5_000); // both are watching
  const other = await login(user.email);
  const loggedOutAt = Date.now();
  t.is((await service.api.post('/logout', undefined, other)).status, 204);
  const wait = await waiting;
  t.is(wait.status, 401, 'the wait answers that the token was revoked');
  await stream.finished;
  const streamEndedAfter = Date.now() - loggedOutAt;
  t.log(
    `after the logout: the wait answered in ${wait.at - loggedOutAt} ms, the stream ended in ${streamEndedAfter} ms`,
  );
  t.true(wait.at - loggedOutAt < 1000);
  t.true(streamEndedAfter < 1000);
});

test('DELETE /me needs the password; then no row of the user is left, and no job of their tasks', async (t) => {
  const { user, token } = await signUp(service.api);
  const tasks: number[] = [];
  for (const title of ['one', 'two']) tasks.push((await service.api.post('/tasks', { title }, token)).body.id);
  await service.api.raw('POST', '/tasks', {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': 'k' },
    body: JSON.stringify({ title: 'keyed' }),
  });
  const wrong = await send('DELETE', '/me', { password: 'not-my-password' }, token);
  t.is(wrong.status, 401);
  // The failed check counts against the account (keyed by a digest of the email, as the limiter keys it).
  const accountKey = createHash('sha256').update(user.email).digest('base64url');
  const [counted] = await query<{ n: number }>(
    service.databaseUrl,
    `select count(*)::int n from rate_limits where key = 'failall:' || $1`,
    [accountKey],
  );
  t.is(counted?.n, 1);
  t.is((await service.api.get('/me', token)).status, 200, 'a wrong password deletes nothing');

  t.is((await send('DELETE', '/me', { password: 'password123' }, token)).status, 204);
  await refusedEverywhere(t, token, 'a deleted user');
  const [left] = await query<Record<string, number>>(
    service.databaseUrl,
    `select (select count(*)::int from users where id = $1 or email = $2) users,
            (select count(*)::int from tasks where user_id = $1) tasks,
            (select count(*)::int from idempotency_keys where user_id = $1) keys,
            (select count(*)::int from rate_limits where key = 'failall:' || $4 or starts_with(key, 'fail:' || $4 || ':'))
              failure_counts,
            (select count(*)::int from pgboss.job where (data->>'taskId')::bigint = any($3)) jobs`,
    [user.id, user.email, tasks, accountKey],
  );
  t.deepEqual(left, { users: 0, tasks: 0, keys: 0, failure_counts: 0, jobs: 0 });
  // The deletions are recorded as task events, as any deletion is (ids only, kept 24 hours).
  const deleted = await query<{ task_id: string }>(
    service.databaseUrl,
    `select task_id from task_events where user_id = $1 and type = 'deleted' order by task_id`,
    [user.id],
  );
  t.is(deleted.length, 3);
});

test.serial(
  'users administration: admins list, read, promote, demote and delete; everyone else gets 403',
  async (t) => {
    const alice = await signUp(service.api);
    const bob = await signUp(service.api);
    for (const [method, path, body] of [
      ['GET', '/users', undefined],
      ['GET', `/users/${bob.user.id}`, undefined],
      ['PATCH', `/users/${bob.user.id}`, { role: 'admin' }],
      ['PATCH', `/users/${alice.user.id}`, { role: 'admin' }],
      ['DELETE', `/users/${bob.user.id}`, undefined],
      ['DELETE', `/users/${alice.user.id}`, undefined],
    ] as const) {
      const reply: Reply = body
        ? await send(method, path, body, alice.token)
        : method === 'GET'
          ? await service.api.get(path, alice.token)
          : await service.api.delete(path, alice.token);
      t.is(reply.status, 403, `${method} ${path}`);
      t.is(reply.body.error.code, 'forbidden');
    }

    // Pages, newest first, with a role filter.
    const seen: number[] = [];
    let next: string | null = '/users?limit=2';
    while (next) {
      const page: Reply = await service.api.get(next, admin.token);
      t.is(page.status, 200);
      for (const user of page.body) t.deepEqual(Object.keys(user).sort(), ['created_at', 'email', 'id', 'role']);
      seen.push(...page.body.map((user: { id: number }) => user.id));
      const link = page.headers.get('link');
      next = link ? (/^<([^>]+)>; rel="next"$/.exec(link)?.[1] ?? null) : null;
    }
    const [{ ids } = { ids: [] }] = await query<{ ids: number[] }>(
      service.databaseUrl,
      'select array_agg(id::int order by id desc) ids from users',
    );
    t.deepEqual(seen, ids);
    const admins = (await service.api.get('/users?role=admin', admin.token)).body;
    t.true(admins.every((user: { role: string }) => user.role === 'admin'));
    t.is((await service.api.get('/users?role=owner', admin.token)).status, 400);

    t.like((await service.api.get(`/users/${bob.user.id}`, admin.token)).body, { id: bob.user.id, role: 'user' });
    t.is((await service.api.get('/users/999999', admin.token)).status, 404);
    const promoted = await service.api.patch(`/users/${bob.user.id}`, { role: 'admin' }, admin.token);
    t.like(promoted.body, { id: bob.user.id, role: 'admin' });
    t.is((await service.api.get('/users', bob.token)).status, 200, 'the role applies to the old token at once');
    t.like((await service.api.patch(`/users/${bob.user.id}`, { role: 'user' }, admin.token)).body, { role: 'user' });
    t.is((await service.api.get('/users', bob.token)).status, 403);
    t.is((await service.api.patch(`/users/${bob.user.id}`, { role: 'root' }, admin.token)).status, 400);

    t.is((await service.api.delete(`/users/${alice.user.id}`, admin.token)).status, 204);
    t.is((await service.api.get('/me', alice.token)).status, 401);
    t.is((await service.api.delete(`/users/${alice.user.id}`, admin.token)).status, 404);
  },
);

test.serial(
  'the last admin cannot be demoted or deleted (409), and two racing removals of the last two admins cannot both succeed',
  async (t) => {
    // This file's admin is the only one: each removal of it is refused.
    const [{ n } = { n: 0 }] = await query<{ n: number }>(
      service.databaseUrl,
      `select count(*)::int n from users where role = 'admin'`,
    );
    t.is(n, 1);
    for (const reply of [
      await service.api.patch(`/users/${admin.user.id}`, { role: 'user' }, admin.token),
      await service.api.delete(`/users/${admin.user.id}`, admin.token),
      await send('DELETE', '/me', { password: 'password123' }, admin.token),
    ]) {
      t.is(reply.status, 409);
      t.regex(reply.body.error.message, /last admin/);
    }
    const outcomes: string[] = [];
    for (let round = 0; round < 6; round++) {
      const second = await signUp(service.api, 'admin', admin.token);
      // Each request would remove one of the two admins; together they would leave none. (This file's admin is
      // only ever demoted, so that it can be restored.)
      const fromAdmin =
        round % 2 === 0
          ? service.api.patch(`/users/${second.user.id}`, { role: 'user' }, admin.token)
          : service.api.delete(`/users/${second.user.id}`, admin.token);
      const fromSecond = service.api.patch(`/users/${admin.user.id}`, { role: 'user' }, second.token);
      const statuses = (await Promise.all([fromAdmin, fromSecond])).map((reply) => reply.status);
      outcomes.push(statuses.join('/'));
      // The loser is a 409 when both passed their role check before either committed, else a 403 (no longer an
      // admin by then) or a 401 (deleted by then).
      t.is(statuses.filter((status) => status === 200 || status === 204).length, 1, `round ${round}: ${statuses}`);
      t.true(
        statuses.some((status) => [409, 403, 401].includes(status)),
        `round ${round}: ${statuses}`,
      );
      const [{ admins } = { admins: 0 }] = await query<{ admins: number }>(
        service.databaseUrl,
        `select count(*)::int admins from users where role = 'admin'`,
      );
      t.is(admins, 1, `round ${round}: one admin remains`);
      await query(service.databaseUrl, `update users set role = 'admin' where id = $1`, [admin.user.id]);
      await query(service.databaseUrl, 'delete from users where id = $1', [second.user.id]);
    }
    t.log(`racing removals (from the admin / from the second admin): ${outcomes.join(', ')}`);
  },
);

test('password checks count like failed logins: after the limit, the account is locked for that address (429)', async (t) => {
  const limited = await startService({ loginFailures: 2 });
  t.teardown(() => limited.stop());
  const { token } = await signUp(limited.api);
  const post = (body: unknown) =>
    limited.api.raw('POST', '/me/password', {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
  t.is((await post({ current_password: 'wrong-one', new_password: 'newpassword1' })).status, 401);
  t.is((await post({ current_password: 'wrong-two', new_password: 'newpassword1' })).status, 401);
  const locked = await post({ current_password: 'password123', new_password: 'newpassword1' });
  t.is(locked.status, 429);
  t.truthy(locked.headers.get('retry-after'));
  t.is((await limited.api.get('/me', token)).status, 200, 'the password did not change');
});
