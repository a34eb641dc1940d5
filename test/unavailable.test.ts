import test from 'ava';
import { createDb } from '../src/db/pool.ts';
import type { Boss } from '../src/db/queues.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { createApp } from '../src/http/app.ts';
import { startEventHub } from '../src/http/eventHub.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';
import { createTestDatabase } from './helpers/db.ts';
import { eventually } from './helpers/process.ts';
import { tcpProxy } from './helpers/proxy.ts';
import { appDefaults, client, listenOnFreePort, type Reply, signUp, TEST_SECRET } from './helpers/service.ts';

test('when Postgres becomes unreachable: readyz and database-backed routes answer 503, healthz stays 200', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const proxy = await tcpProxy(new URL(database.url));
  const db = await createDb(proxy.url, { maximumPoolSize: 2, queryTimeoutMs: 15_000 });
  t.teardown(() => db.end().catch(() => {}));
  const accounts = { secret: TEST_SECRET, expiresInSeconds: 60, bcryptCost: 4 };
  const log = createLogger({ LOG_LEVEL: 'silent' });
  const events = await startEventHub({ url: proxy.url, db, log });
  t.teardown(() => events.close());
  const app = createApp({
    events,
    db,
    log,
    accounts,
    tasks: { db, boss: null as unknown as Boss, delaySeconds: 120, parkBeyondSeconds: 600 },
    schedules: { db, boss: null as unknown as Boss, parkBeyondSeconds: 600, minIntervalSeconds: 60 }, // not reached: the database fails first
    ...appDefaults,
  });
  const { server, baseUrl } = await listenOnFreePort(app);
  t.teardown(() => server.close());
  const api = client(baseUrl);
  const token = signToken({ id: 1, role: 'user' }, accounts);

  t.is((await api.get('/readyz')).status, 200);
  const health = await api.get('/healthz');
  t.regex(health.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, 'every response carries a request id');
  t.is(health.headers.get('x-content-type-options'), 'nosniff', 'security headers are set');

  proxy.cut();
  t.is((await api.get('/healthz')).status, 200);
  for (const reply of [
    await api.get('/readyz'),
    await api.get('/me', token),
    await api.get('/tasks', token),
    await api.post('/login', { email: 'a@example.com', password: 'password123' }),
  ]) {
    t.is(reply.status, 503);
    t.is(reply.body.error.code, 'unavailable');
    t.is(reply.headers.get('retry-after'), '5');
  }
});

test('during a network partition answers stay bounded (readyz ~1 s, requests a few seconds), and it heals by itself', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const proxy = await tcpProxy(new URL(database.url));
  const log = createLogger({ LOG_LEVEL: 'silent' });
  const db = await createDb(proxy.url, { maximumPoolSize: 3, queryTimeoutMs: 2_000 });
  t.teardown(async () => {
    await db.end().catch(() => {});
    proxy.cut();
  });
  const boss = await startBoss({ url: database.url, log, role: 'web', poolSize: 2 });
  t.teardown(() => boss.stop({ graceful: false }));
  const accounts = { secret: TEST_SECRET, expiresInSeconds: 60, bcryptCost: 4 };
  const events = await startEventHub({ url: proxy.url, db, log });
  t.teardown(() => events.close());
  const app = createApp({
    ...appDefaults,
    events,
    db,
    log,
    accounts,
    tasks: { db, boss, delaySeconds: 120, parkBeyondSeconds: 600 },
    schedules: { db, boss, parkBeyondSeconds: 600, minIntervalSeconds: 60 },
    requestTimeoutMs: 3_000,
  });
  const { server, baseUrl } = await listenOnFreePort(app);
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const api = client(baseUrl);
  const { token } = await signUp(api);
  t.is((await api.get('/tasks', token)).status, 200);

  proxy.blackhole();
  const timed = async (reply: Promise<Reply>) => {
    const started = Date.now();
    const answer = await reply;
    return { ...answer, ms: Date.now() - started };
  };
  const ready = await timed(api.get('/readyz'));
  t.is(ready.status, 503);
  t.true(ready.ms < 2_000, `readyz took ${ready.ms} ms`);
  const replies = await Promise.all([
    timed(api.get('/tasks', token)),
    timed(api.post('/tasks', { title: 'during the partition' }, token)),
    timed(api.post('/login', { email: 'someone@example.com', password: 'password123' })),
    timed(api.get('/me', token)),
  ]);
  for (const reply of replies) {
    t.is(reply.status, 503);
    t.is(reply.body.error.code, 'unavailable');
    t.true(reply.ms < 5_000, `a request took ${reply.ms} ms`);
  }
  t.log(`answers during the partition: readyz ${ready.ms} ms, requests ${replies.map((r) => r.ms).join(', ')} ms`);

  proxy.heal();
  const healed = await eventually(async () => {
    const reply = await api.get('/tasks', token);
    return reply.status === 200 && reply;
  }, 20_000);
  t.is(healed.status, 200);
  t.is((await api.get('/readyz')).status, 200);
});
