import test from 'ava';
import { onBossDb } from '../src/db/connection.ts';
import { purgeExpiredRateLimits } from '../src/domain/retention.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { query } from './helpers/db.ts';
import { type client, signUp, startService } from './helpers/service.ts';

const wrongLogin = (api: ReturnType<typeof client>, path = '/login', headers: Record<string, string> = {}) =>
  api.raw('POST', path, {
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ email: 'nobody@example.com', password: 'wrong-password' }),
  });

test('behind one trusted proxy, the address is the one the proxy appended, not what the client wrote', async (t) => {
  const service = await startService({ authPerMinute: 5, trustProxyHops: 1 });
  t.teardown(() => service.stop());
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) {
    // The client forges a new leftmost address each time; the router appends the real one, 203.0.113.7.
    const reply = await wrongLogin(service.api, '/login', { 'x-forwarded-for': `10.0.0.${i}, 203.0.113.7` });
    statuses.push(reply.status);
  }
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
  // Another real client, behind the same proxy, has a count of its own.
  t.is((await wrongLogin(service.api, '/login', { 'x-forwarded-for': '198.51.100.9' })).status, 401);
});

test('the count is per route: /Login, /LOGIN and /login/ count as /login', async (t) => {
  const service = await startService({ authPerMinute: 4 });
  t.teardown(() => service.stop());
  const statuses = [];
  for (const path of ['/login', '/Login', '/LOGIN', '/login/', '/LoGiN/', '/login']) {
    statuses.push((await wrongLogin(service.api, path)).status);
  }
  t.deepEqual(statuses, [401, 401, 401, 401, 429, 429]);
});

test('the limit holds across web processes: two apps on one database share the count', async (t) => {
  const first = await startService({ authPerMinute: 6 });
  t.teardown(() => first.stop());
  const second = await startService({ authPerMinute: 6, databaseUrl: first.databaseUrl });
  t.teardown(() => second.stop());
  const statuses = [];
  for (let i = 0; i < 5; i++) {
    statuses.push((await wrongLogin(first.api)).status, (await wrongLogin(second.api)).status);
  }
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 429, 429, 429, 429]);
  const rows = await query<{ key: string; points: number }>(
    first.databaseUrl,
    `select key, points from rate_limits where key like 'addr:%'`,
  );
  t.deepEqual(rows, [{ key: 'addr:login:127.0.0.1', points: 10 }], 'counted in Postgres');
});

test('responses carry the IETF RateLimit headers, and a 429 says when to retry', async (t) => {
  const service = await startService({ authPerMinute: 2 });
  t.teardown(() => service.stop());
  const first = await wrongLogin(service.api);
  t.is(first.headers.get('ratelimit-policy'), '"login";q=2;w=60');
  t.regex(first.headers.get('ratelimit') ?? '', /^"login";r=1;t=(60|59)$/);
  await wrongLogin(service.api);
  const blocked = await wrongLogin(service.api);
  t.is(blocked.status, 429);
  t.is(blocked.body.error.code, 'rate_limited');
  t.regex(blocked.headers.get('ratelimit') ?? '', /^"login";r=0;t=\d+$/);
  const retryAfter = Number(blocked.headers.get('retry-after'));
  t.true(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
});

test('failed logins lock an account for the address that failed, not for its owner elsewhere', async (t) => {
  const service = await startService({ loginFailures: 3, trustProxyHops: 1 });
  t.teardown(() => service.stop());
  const { user } = await signUp(service.api);
  const login = (password: string, address: string) =>
    service.api.raw('POST', '/login', {
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
      body: JSON.stringify({ email: user.email.toUpperCase(), password }),
    });
  const attacker = '203.0.113.66';
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await login(`guess-${i}-xx`, attacker)).status);
  t.deepEqual(statuses, [401, 401, 401, 429]);
  const locked = await login('password123', attacker);
  t.is(locked.status, 429, 'even the right password is refused from that address while locked');
  t.regex(locked.body.error.message, /failed logins/);
  t.true(Number(locked.headers.get('retry-after')) > 60, 'locked for minutes, not seconds');
  const owner = await login('password123', '198.51.100.20');
  t.is(owner.status, 200, 'the owner, elsewhere, still logs in');
});

test('failed logins from many addresses lock the account for everyone, for at most an hour', async (t) => {
  const service = await startService({ loginFailures: 1, trustProxyHops: 1 });
  t.teardown(() => service.stop());
  const { user } = await signUp(service.api);
  const login = (address: string) =>
    service.api.raw('POST', '/login', {
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
      body: JSON.stringify({ email: user.email, password: 'not-the-password' }),
    });
  const statuses = [];
  // 1 failure an address, 10 failures an account in all: the 11th address finds the account locked.
  for (let i = 1; i <= 11; i++) statuses.push((await login(`203.0.113.${i}`)).status);
  t.deepEqual(statuses, [...Array(10).fill(401), 429]);
  const retryAfter = Number((await login('198.51.100.1')).headers.get('retry-after'));
  t.true(retryAfter > 60 && retryAfter <= 3600, `Retry-After: ${retryAfter}`);
});

test('the reconciliation pass deletes counters whose window has ended, and only those', async (t) => {
  const service = await startService({ authPerMinute: 3 });
  t.teardown(() => service.stop());
  for (let i = 0; i < 3; i++) await wrongLogin(service.api);
  const counters = await query<{ key: string }>(service.databaseUrl, 'select key from rate_limits order by key');
  t.true(counters.length >= 2, 'the address counter and the failed-account counters');
  // A failed-account counter ends; the address's counter (three of three used) lives on.
  const ended = counters.find((row) => !row.key.startsWith('addr'));
  await query(service.databaseUrl, 'update rate_limits set expire = 0 where key = $1', [ended?.key]);
  const boss = await startBoss({
    url: service.databaseUrl,
    log: createLogger({ LOG_LEVEL: 'silent' }),
    role: 'worker',
    poolSize: 1,
  });
  t.teardown(() => boss.stop({ graceful: false }));
  t.is(await purgeExpiredRateLimits(onBossDb(boss.getDb())), 1);
  const left = await query<{ key: string }>(service.databaseUrl, 'select key from rate_limits order by key');
  t.deepEqual(
    left.map((row) => row.key),
    counters.filter((row) => row !== ended).map((row) => row.key),
  );
  t.is((await wrongLogin(service.api)).status, 429, 'a live counter still counts');
});
