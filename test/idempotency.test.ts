import test from 'ava';
import { query } from './helpers/db.ts';
import { signUp, startService, type TestService } from './helpers/service.ts';

let service: TestService;
test.before(async () => {
  service = await startService();
});
test.after.always(() => service?.stop());

const post = (token: string, key: string, body: unknown) =>
  service.api.raw('POST', '/tasks', {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': key },
    body: JSON.stringify(body),
  });

const countsOf = async (userId: number) =>
  (
    await query<{ tasks: number; jobs: number }>(
      service.databaseUrl,
      `select (select count(*)::int from tasks where user_id = $1) tasks,
              (select count(*)::int from pgboss.job where data->>'taskId' in
                 (select id::text from tasks where user_id = $1)) jobs`,
      [userId],
    )
  )[0];

test('a retry with the same key and body gets the first answer and creates nothing', async (t) => {
  const { token, user } = await signUp(service.api);
  const first = await post(token, 'order-1', { title: 'once', description: 'only once' });
  t.is(first.status, 201);
  const again = await post(token, 'order-1', { title: 'once', description: 'only once' });
  t.is(again.status, 201);
  t.deepEqual(again.body, first.body);
  t.is(again.headers.get('location'), `/tasks/${first.body.id}`);
  t.deepEqual(await countsOf(user.id), { tasks: 1, jobs: 1 });
  // Quoted as a structured-field string, the key is the same key.
  t.deepEqual((await post(token, '"order-1"', { title: 'once', description: 'only once' })).body, first.body);
});

test('the same key with another body is a 422, and creates nothing', async (t) => {
  const { token, user } = await signUp(service.api);
  t.is((await post(token, 'k', { title: 'first' })).status, 201);
  const other = await post(token, 'k', { title: 'second' });
  t.is(other.status, 422);
  t.is(other.body.error.code, 'idempotency_key_reused');
  t.deepEqual(await countsOf(user.id), { tasks: 1, jobs: 1 });
});

test('keys belong to their user: the same key from two users creates two tasks', async (t) => {
  const alice = await signUp(service.api);
  const bob = await signUp(service.api);
  const a = await post(alice.token, 'shared-key', { title: 'same' });
  const b = await post(bob.token, 'shared-key', { title: 'same' });
  t.is(a.status, 201);
  t.is(b.status, 201);
  t.not(a.body.id, b.body.id);
  t.is(b.body.user_id, bob.user.id);
});

test('concurrent retries race safely: one task, every answer the same', async (t) => {
  const { token, user } = await signUp(service.api);
  const replies = await Promise.all(Array.from({ length: 8 }, () => post(token, 'burst', { title: 'raced' })));
  t.deepEqual(
    replies.map((reply) => reply.status),
    Array(8).fill(201),
  );
  t.is(new Set(replies.map((reply) => reply.body.id)).size, 1);
  t.deepEqual(await countsOf(user.id), { tasks: 1, jobs: 1 });
});

test('a key older than 24 hours is forgotten: the request creates a new task', async (t) => {
  const { token, user } = await signUp(service.api);
  const first = await post(token, 'old', { title: 'yesterday' });
  await query(
    service.databaseUrl,
    `update idempotency_keys set created_at = now() - interval '25 hours' where user_id = $1`,
    [user.id],
  );
  const later = await post(token, 'old', { title: 'today' });
  t.is(later.status, 201);
  t.not(later.body.id, first.body.id);
  t.deepEqual(await countsOf(user.id), { tasks: 2, jobs: 2 });
});

test('a malformed key is a 400 naming the header, and creates nothing', async (t) => {
  const { token, user } = await signUp(service.api);
  for (const key of ['x'.repeat(256), 'has space', '""']) {
    const reply = await post(token, key, { title: 'x' });
    t.is(reply.status, 400, key);
    t.is(reply.body.error.details[0].field, 'Idempotency-Key');
  }
  t.deepEqual(await countsOf(user.id), { tasks: 0, jobs: 0 });
});
