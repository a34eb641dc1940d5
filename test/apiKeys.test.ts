/**
 * API keys for scripts: shown once, stored as a hash, scoped, refused on the account routes, revoked at
 * once in every process, and as cheap as a token. Against a real Postgres.
 */
import test from 'ava';
import { isWellFormedApiKey } from '../src/domain/apiKeys/apiKey.ts';
import { createLogger } from '../src/log.ts';
import { createTestDatabase, query } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { tcpProxy } from './helpers/proxy.ts';
import { signUp, startService, type TestService } from './helpers/service.ts';

const ALL = ['tasks:read', 'tasks:write', 'schedules:read', 'schedules:write', 'webhooks:read', 'webhooks:write'];

const makeKey = async (service: TestService, token: string, scopes: string[], extra: object = {}) => {
  const reply = await service.api.post('/me/api-keys', { name: `key ${scopes.join(' ')}`, scopes, ...extra }, token);
  if (reply.status !== 201) throw new Error(`POST /me/api-keys: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body as { id: number; key: string; prefix: string; scopes: string[]; expires_at: string | null };
};

test('a key is shown once, stored only as a hash, listed without it, and acts as its user within its scopes', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const { token, user } = await signUp(service.api);
  const created = await service.api.post('/me/api-keys', { name: ' CI deploys ', scopes: ['tasks:read'] }, token);
  t.is(created.status, 201);
  t.is(created.headers.get('location'), `/me/api-keys/${created.body.id}`);
  t.is(created.headers.get('cache-control'), 'no-store');
  const { key } = created.body;
  t.regex(key, /^tm_[0-9A-Za-z]{49}$/);
  t.true(isWellFormedApiKey(key));
  t.like(created.body, {
    name: 'CI deploys',
    scopes: ['tasks:read'],
    prefix: key.slice(0, 10),
    expires_at: null,
    last_used_at: null,
  });
  const [stored] = await query<{ hash: Buffer; row: string }>(
    service.databaseUrl,
    'select hash, api_keys::text as row from api_keys',
  );
  t.is(stored?.hash.length, 32, 'a SHA-256');
  t.false(stored?.row.includes(key.slice(10)), 'the key itself is not stored');
  const listed = await service.api.get('/me/api-keys', token);
  t.deepEqual(
    listed.body.map((k: { id: number }) => k.id),
    [created.body.id],
  );
  t.false(JSON.stringify(listed.body).includes(key), 'a list never shows the key');

  await service.api.post('/tasks', { title: 'mine' }, token);
  const read = await service.api.get('/tasks', key);
  t.is(read.status, 200);
  t.deepEqual(
    read.body.map((task: { user_id: number }) => task.user_id),
    [user.id],
  );
  t.is(
    (await service.api.get('/me', `Bearer ${key}`)).body.id,
    user.id,
    'with or without Bearer, GET /me with any key',
  );
  const refused = await service.api.post('/tasks', { title: 'not allowed' }, key);
  t.is(refused.status, 403);
  t.is(refused.body.error.code, 'insufficient_scope');
  t.regex(refused.body.error.message, /tasks:write/);
  t.false(JSON.stringify(refused.body).includes(key), 'no error body shows the key');

  // Kept to the minute, written after the answer.
  const used = await eventually(async () => {
    const [row] = await query<{ last_used_at: Date | null }>(service.databaseUrl, 'select last_used_at from api_keys');
    return row?.last_used_at ?? false;
  }, 5_000);
  t.is(used.getSeconds(), 0);
  t.is(used.getMilliseconds(), 0);
});

test('each scope lets its routes in and no others, on each route family', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const task = (await service.api.post('/tasks', { title: 't' }, token)).body;
  const endpoint = (
    await service.api.post('/webhooks', { url: 'http://127.0.0.1:9/x', events: ['task.created'] }, token)
  ).body;
  const schedule = (await service.api.post('/schedules', { title: 's', cron: '0 0 * * *', paused: true }, token)).body;
  const routes: [string, string, string, unknown?][] = [
    ['tasks:read', 'GET', '/tasks'],
    ['schedules:read', 'GET', '/schedules'],
    ['schedules:read', 'GET', `/schedules/${schedule.id}`],
    ['schedules:read', 'GET', `/schedules/${schedule.id}/upcoming`],
    ['schedules:read', 'GET', '/schedules/preview?cron=0%209%20*%20*%20*'],
    ['schedules:write', 'POST', '/schedules', { title: 'by key', cron: '0 0 * * *', paused: true }],
    ['schedules:write', 'PATCH', `/schedules/${schedule.id}`, { title: 'by key' }],
    ['tasks:read', 'GET', `/tasks/${task.id}`],
    ['tasks:write', 'POST', '/tasks', { title: 'by key' }],
    ['tasks:write', 'PATCH', `/tasks/${task.id}`, { title: 'renamed' }],
    ['webhooks:read', 'GET', '/webhooks'],
    ['webhooks:read', 'GET', `/webhooks/${endpoint.id}`],
    ['webhooks:read', 'GET', `/webhooks/${endpoint.id}/deliveries`],
    ['webhooks:write', 'PATCH', `/webhooks/${endpoint.id}`, { description: 'by key' }],
    ['webhooks:write', 'POST', `/webhooks/${endpoint.id}/rotate-secret`, {}],
  ];
  for (const scope of ALL) {
    const only = await makeKey(service, token, [scope]);
    const allBut = await makeKey(
      service,
      token,
      ALL.filter((other) => other !== scope),
    );
    for (const [needed, method, path, body] of routes) {
      const send = (key: string) =>
        method === 'GET'
          ? service.api.get(path, key)
          : service.api[method === 'POST' ? 'post' : 'patch'](path, body, key);
      const withOnly = await send(only.key);
      const withOthers = await send(allBut.key);
      if (needed === scope) {
        t.true(withOnly.status < 300, `${scope}: ${method} ${path} -> ${withOnly.status}`);
        t.is(withOthers.status, 403, `all but ${scope}: ${method} ${path}`);
        t.is(withOthers.body.error.code, 'insufficient_scope');
        t.regex(withOthers.body.error.message, new RegExp(scope));
      } else {
        t.is(withOnly.status, 403, `${scope} only: ${method} ${path}`);
      }
    }
    for (const id of [only.id, allBut.id]) await service.api.delete(`/me/api-keys/${id}`, token);
  }
  t.is(
    (await service.api.delete(`/tasks/${task.id}`, (await makeKey(service, token, ['tasks:write'])).key)).status,
    204,
  );
});

test('account routes and /users refuse keys, even an admin’s, with a 401 that says a login token is needed', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const admin = await signUp(service.api, 'admin');
  const other = await signUp(service.api);
  const { key, id } = await makeKey(service, admin.token, ALL);
  const refused: [string, string, unknown?][] = [
    ['POST', '/me/password', { current_password: 'password123', new_password: 'password456' }],
    ['POST', '/logout', {}],
    ['DELETE', '/me', undefined],
    ['GET', '/me/api-keys'],
    ['POST', '/me/api-keys', { name: 'k', scopes: ['tasks:read'] }],
    ['DELETE', `/me/api-keys/${id}`],
    ['GET', '/users'],
    ['GET', `/users/${other.user.id}`],
    ['PATCH', `/users/${other.user.id}`, { role: 'admin' }],
    ['DELETE', `/users/${other.user.id}`],
    ['GET', `/users/${other.user.id}/api-keys`],
    ['POST', '/register', { email: 'sneaky@example.com', password: 'password123', role: 'admin' }],
  ];
  for (const [method, path, body] of refused) {
    const reply = await service.api.raw(method, path, {
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    t.is(reply.status, 401, `${method} ${path}`);
    t.regex(reply.body.error.message, /login token/, `${method} ${path}`);
  }
  // The admin's key acts with the admin's role where its scopes allow: everyone's tasks.
  await service.api.post('/tasks', { title: "other's" }, other.token);
  const all = await service.api.get('/tasks', key);
  t.true(all.body.some((task: { user_id: number }) => task.user_id === other.user.id));
  t.is((await service.api.get('/me', admin.token)).status, 200, 'the login token still works');
  t.is((await service.api.get('/me/api-keys', admin.token)).body.length, 1, 'the key was not revoked by the attempt');
});

test('admins list and revoke anyone’s keys; others get a 403; someone else’s key is a 404', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const admin = await signUp(service.api, 'admin');
  const alice = await signUp(service.api);
  const bob = await signUp(service.api);
  const aliceKey = await makeKey(service, alice.token, ['tasks:read']);
  t.is((await service.api.delete(`/me/api-keys/${aliceKey.id}`, bob.token)).status, 404);
  t.is((await service.api.get(`/users/${alice.user.id}/api-keys`, bob.token)).status, 403);
  const listed = await service.api.get(`/users/${alice.user.id}/api-keys`, admin.token);
  t.deepEqual(
    listed.body.map((k: { id: number }) => k.id),
    [aliceKey.id],
  );
  t.is((await service.api.get('/users/999999/api-keys', admin.token)).status, 404);
  t.is((await service.api.delete(`/users/${bob.user.id}/api-keys/${aliceKey.id}`, admin.token)).status, 404);
  t.is((await service.api.delete(`/users/${alice.user.id}/api-keys/${aliceKey.id}`, admin.token)).status, 204);
  t.is((await service.api.get('/tasks', aliceKey.key)).status, 401);
});

test('bad input: names, scopes, expiry; at most 20 keys; expires_in_days gives expires_at', async (t) => {
  const service = await startService();
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  for (const [body, field] of [
    [{ scopes: ['tasks:read'] }, 'name'],
    [{ name: '', scopes: ['tasks:read'] }, 'name'],
    [{ name: 'k', scopes: [] }, 'scopes'],
    [{ name: 'k', scopes: ['tasks:delete'] }, 'scopes.0'],
    [{ name: 'k', scopes: ['tasks:read', 'tasks:read'] }, 'scopes'],
    [{ name: 'k', scopes: ['tasks:read'], expires_in_days: 0 }, 'expires_in_days'],
    [{ name: 'k', scopes: ['tasks:read'], expires_in_days: 3651 }, 'expires_in_days'],
    [{ name: 'k', scopes: ['tasks:read'], expires_in_days: 1.5 }, 'expires_in_days'],
  ] as const) {
    const reply = await service.api.post('/me/api-keys', body, token);
    t.is(reply.status, 400, JSON.stringify(body));
    t.is(reply.body.error.details[0].field, field, JSON.stringify(body));
  }
  const expiring = await makeKey(service, token, ['tasks:read'], { expires_in_days: 30 });
  const days = (Date.parse(expiring.expires_at ?? '') - Date.now()) / 86_400_000;
  t.true(days > 29.9 && days <= 30, `expires in ${days} days`);
  for (let i = 1; i < 20; i++) await makeKey(service, token, ['tasks:read']);
  const over = await service.api.post('/me/api-keys', { name: 'one too many', scopes: ['tasks:read'] }, token);
  t.is(over.status, 409);
  t.regex(over.body.error.message, /at most 20/);
});

test('a malformed key, or one with a wrong checksum, is refused without a query', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const proxy = await tcpProxy(new URL(database.url));
  t.teardown(() => proxy.cut());
  const service = await startService({ databaseUrl: proxy.url });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const { key } = await makeKey(service, token, ['tasks:read']);
  const last = key.at(-1) === 'a' ? 'b' : 'a';
  for (const bad of [
    `${key.slice(0, -1)}${last}`,
    `${key}x`,
    'tm_short',
    `tm_${'!'.repeat(49)}`,
    `tm_${key.slice(3).toLowerCase()}`,
  ]) {
    const before = proxy.sent;
    const reply = await service.api.get('/tasks', bad);
    t.is(reply.status, 401, bad);
    t.is(reply.body.error.message, 'malformed API key');
    t.is(proxy.sent - before, 0, `no byte went to Postgres for ${bad}`);
  }
  const before = proxy.sent;
  t.is((await service.api.get('/tasks', key)).status, 200);
  t.true(proxy.sent > before, 'a real key is looked up (the check above can fail)');
});

test('failed keys count per address like failed logins; creating keys counts like a password check', async (t) => {
  const service = await startService({ loginFailures: 3, authPerMinute: 3 });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const { key, id } = await makeKey(service, token, ['tasks:read']);
  await service.api.delete(`/me/api-keys/${id}`, token);
  const { key: good } = await makeKey(service, token, ['tasks:read']);
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await service.api.get('/tasks', key)).status); // a revoked key
  t.deepEqual(statuses, [401, 401, 401, 429]);
  const locked = await service.api.get('/tasks', good);
  t.is(locked.status, 429, 'the address is locked for keys, good ones too');
  t.truthy(locked.headers.get('retry-after'));
  t.is((await service.api.get('/tasks', token)).status, 200, 'login tokens are not affected');
  // Three key creations a minute from one address (the password checks' budget: two made above), then 429.
  const third = await service.api.post('/me/api-keys', { name: 'third', scopes: ['tasks:read'] }, token);
  t.is(third.status, 201);
  const fourth = await service.api.post('/me/api-keys', { name: 'fourth', scopes: ['tasks:read'] }, token);
  t.is(fourth.status, 429);
});

test('revocation, expiry, user deletion and demotion reach a second web process within a second', async (t) => {
  const a = await startService();
  t.teardown(() => a.stop());
  const b = await startService({ databaseUrl: a.databaseUrl });
  t.teardown(() => b.stop());
  const admin = await signUp(a.api, 'admin');
  const second = await signUp(a.api, 'admin', admin.token);
  const user = await signUp(a.api);
  await a.api.post('/tasks', { title: "user's" }, user.token);
  /** Waits until `check` holds on process b, and says how long it took. */
  const within = async (label: string, check: () => Promise<boolean>) => {
    const started = Date.now();
    await eventually(check, 5_000);
    const took = Date.now() - started;
    t.log(`${label}: ${took} ms`);
    t.true(took < 1_000, `${label} took ${took} ms`);
  };

  const revoked = await makeKey(a, user.token, ['tasks:read']);
  t.is((await b.api.get('/tasks', revoked.key)).status, 200); // b has it cached now
  t.is((await a.api.delete(`/me/api-keys/${revoked.id}`, user.token)).status, 204);
  await within('revocation', async () => (await b.api.get('/tasks', revoked.key)).status === 401);

  const expiring = await makeKey(a, user.token, ['tasks:read'], { expires_in_days: 1 });
  await query(a.databaseUrl, `update api_keys set expires_at = now() + interval '1.5 seconds' where id = $1`, [
    expiring.id,
  ]);
  t.is((await b.api.get('/tasks', expiring.key)).status, 200);
  const [{ at } = { at: new Date() }] = await query<{ at: Date }>(
    a.databaseUrl,
    'select expires_at as at from api_keys where id = $1',
    [expiring.id],
  );
  await eventually(async () => Date.now() >= at.getTime(), 5_000);
  await within('expiry', async () => {
    const reply = await b.api.get('/tasks', expiring.key);
    return reply.status === 401 && reply.body.error.message === 'API key expired';
  });

  const demoted = await makeKey(a, second.token, ['tasks:read']);
  const everyone = await b.api.get('/tasks', demoted.key);
  t.true(
    everyone.body.some((task: { user_id: number }) => task.user_id === user.user.id),
    'an admin key sees all',
  );
  t.is((await a.api.patch(`/users/${second.user.id}`, { role: 'user' }, admin.token)).status, 200);
  await within('demotion', async () => (await b.api.get('/tasks', demoted.key)).body.length === 0);

  const gone = await makeKey(a, user.token, ['tasks:read']);
  t.is((await b.api.get('/tasks', gone.key)).status, 200);
  t.is((await a.api.delete(`/users/${user.user.id}`, admin.token)).status, 204);
  await within('user deletion', async () => (await b.api.get('/tasks', gone.key)).status === 401);
  t.deepEqual(await query(a.databaseUrl, 'select id from api_keys where id = $1', [gone.id]), []);
});

test('a key never appears in the logs, whatever the request', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ LOG_LEVEL: 'trace' }, { write: (line: string) => void lines.push(line) });
  const service = await startService({ log });
  t.teardown(() => service.stop());
  const { token } = await signUp(service.api);
  const { key, id, prefix } = await makeKey(service, token, ['tasks:read']);
  await service.api.get('/tasks', key);
  await service.api.post('/tasks', { title: 'refused' }, key);
  await service.api.delete(`/me/api-keys/${id}`, token);
  await service.api.get('/tasks', key);
  t.true(lines.length > 5, 'requests were logged');
  const secret = key.slice(prefix.length);
  t.false(
    lines.some((line) => line.includes(secret)),
    'no log line holds the key',
  );
});
