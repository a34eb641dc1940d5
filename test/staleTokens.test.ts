import test from 'ava';
import { query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { signUp, startService, type TestService } from './helpers/service.ts';

let service: TestService;
test.before(async () => {
  service = await startService();
});
test.after.always(() => service?.stop());

const sqlOn = (text: string, values: unknown[] = []) => query(service.databaseUrl, text, values);

/**
 * A change made in SQL reaches the web process by the users trigger's NOTIFY, within its latency
 * (docs/api.md, Accounts): wait until the process has it (the token's /me is a 401) before checking more.
 */
const tokenRefused = (token: string) =>
  eventually(async () => (await service.api.get('/me', token)).status === 401, 1_000);

test.serial("a deleted admin's token is a 401: it creates no admin and changes no task", async (t) => {
  const admin = await signUp(service.api, 'admin');
  const owner = await signUp(service.api);
  const task = await service.api.post('/tasks', { title: 'mine' }, owner.token);
  await sqlOn('delete from users where id = $1', [admin.user.id]);
  await tokenRefused(admin.token);

  const newAdmin = await service.api.post(
    '/register',
    { email: 'sneaky-admin@example.com', password: 'password123', role: 'admin' },
    admin.token,
  );
  t.is(newAdmin.status, 401);
  t.is(newAdmin.body.error.code, 'unauthorized');
  t.is((await service.api.patch(`/tasks/${task.body.id}`, { title: 'taken over' }, admin.token)).status, 401);
  t.is((await service.api.delete(`/tasks/${task.body.id}`, admin.token)).status, 401);
  t.deepEqual(await sqlOn(`select count(*)::int n from users where email = 'sneaky-admin@example.com'`), [{ n: 0 }]);
  t.deepEqual(await sqlOn('select title from tasks where id = $1', [task.body.id]), [{ title: 'mine' }]);
});

test.serial('a demoted admin loses admin powers at once, though the token still says "admin"', async (t) => {
  const admin = await signUp(service.api, 'admin');
  // Another admin remains (so no bootstrap grant applies after) and demotes the first through the API: the
  // process that makes the change forgets the cached role at once (the others by the NOTIFY: apiKeys test).
  const second = await signUp(service.api, 'admin', admin.token);
  const other = await signUp(service.api);
  const task = await service.api.post('/tasks', { title: 'not yours' }, other.token);
  t.is((await service.api.get(`/tasks/${task.body.id}`, admin.token)).status, 200, 'an admin reads any task');
  const demoted = await service.api.patch(`/users/${admin.user.id}`, { role: 'user' }, second.token);
  t.is(demoted.status, 200);
  t.is(demoted.body.role, 'user');

  t.is((await service.api.get(`/tasks/${task.body.id}`, admin.token)).status, 404);
  t.is((await service.api.delete(`/tasks/${task.body.id}`, admin.token)).status, 404);
  t.is((await service.api.get(`/tasks?user_id=${other.user.id}`, admin.token)).status, 403);
  const register = await service.api.post(
    '/register',
    { email: 'second-admin@example.com', password: 'password123', role: 'admin' },
    admin.token,
  );
  t.is(register.status, 403);
  t.is((await service.api.get('/me', admin.token)).body.role, 'user');
});

test.serial("a deleted user's token is a 401 on every route, POST /tasks included (not a 500)", async (t) => {
  const gone = await signUp(service.api);
  const task = await service.api.post('/tasks', { title: 'before' }, gone.token);
  await sqlOn('delete from users where id = $1', [gone.user.id]);
  await tokenRefused(gone.token);
  const replies = [
    await service.api.get('/me', gone.token),
    await service.api.post('/tasks', { title: 'after' }, gone.token),
    await service.api.get('/tasks', gone.token),
    await service.api.get(`/tasks/${task.body.id}`, gone.token),
    await service.api.patch(`/tasks/${task.body.id}`, { title: 'x' }, gone.token),
    await service.api.delete(`/tasks/${task.body.id}`, gone.token),
  ];
  t.deepEqual(
    replies.map((reply) => [reply.status, reply.body.error.code]),
    Array(6).fill([401, 'unauthorized']),
  );
});
