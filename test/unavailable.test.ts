import net, { type AddressInfo } from 'node:net';
import test from 'ava';
import { createDb } from '../src/db/pool.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { createApp } from '../src/http/app.ts';
import type { Boss } from '../src/jobs/queue.ts';
import { createLogger } from '../src/log.ts';
import { createTestDatabase } from './helpers/db.ts';
import { appDefaults, client, listenOnFreePort, TEST_SECRET } from './helpers/service.ts';

/** A TCP proxy to the database that can be cut, as an outage would. */
async function cuttableProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const end of [socket, upstream]) {
      sockets.add(end);
      end.on('error', () => {});
      end.on('close', () => sockets.delete(end));
    }
    socket.pipe(upstream).pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const proxied = new URL(target);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as AddressInfo).port);
  return {
    url: proxied.toString(),
    cut: () => {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

test('when Postgres becomes unreachable: readyz and database-backed routes answer 503, healthz stays 200', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const proxy = await cuttableProxy(new URL(database.url));
  const db = await createDb(proxy.url, { maximumPoolSize: 2, queryTimeoutMs: 15_000 });
  t.teardown(() => db.end().catch(() => {}));
  const accounts = { secret: TEST_SECRET, expiresInSeconds: 60, bcryptCost: 4 };
  const app = createApp({
    db,
    log: createLogger({ LOG_LEVEL: 'silent' }),
    accounts,
    tasks: { db, boss: null as unknown as Boss, delaySeconds: 120 }, // not reached: the database fails first
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
