import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import { createTestDatabase } from './helpers/db.ts';
import { listeningUrl, spawnService } from './helpers/process.ts';
import { freePort, tcpProxy } from './helpers/proxy.ts';
import { client, signUp, TEST_SECRET } from './helpers/service.ts';

const serviceEnv = (databaseUrl: string, extra: Record<string, string> = {}) => ({
  DATABASE_URL: databaseUrl,
  RATE_LIMIT_AUTH_PER_MINUTE: '1000',
  JWT_SECRET: TEST_SECRET,
  ...extra,
});

test('started before its database: healthz 200 and readyz 503 meanwhile, then it serves once the database answers', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const port = await freePort(); // nothing listens here yet: the database is "down"
  const lateUrl = Object.assign(new URL(database.url), { hostname: '127.0.0.1', port: String(port) }).toString();
  const service = spawnService('web', serviceEnv(lateUrl, { DATABASE_WAIT_SECONDS: '60' }));
  t.teardown(() => service.child.kill('SIGKILL'));
  const starting = await service.waitFor((line) => line.msg === 'accepting connections; starting');
  const baseUrl = `http://127.0.0.1:${starting.port}`;
  await service.waitFor((line) => line.msg === 'the database does not answer yet; retrying');

  const health = await fetch(`${baseUrl}/healthz`);
  t.is(health.status, 200);
  const ready = await fetch(`${baseUrl}/readyz`);
  t.is(ready.status, 503);
  t.is(((await ready.json()) as { error: { code: string } }).error.code, 'unavailable');
  t.is((await fetch(`${baseUrl}/tasks`)).status, 503);

  const proxy = await tcpProxy(new URL(database.url), port); // the database comes up
  t.teardown(() => proxy.cut());
  t.is(await listeningUrl(service), baseUrl);
  t.is((await fetch(`${baseUrl}/readyz`)).status, 200);
  const { token } = await signUp(client(baseUrl));
  t.is((await client(baseUrl).post('/tasks', { title: 'after the wait' }, token)).status, 201);
});

test('a database that never answers ends the start with exit 1 and a message naming it', async (t) => {
  const port = await freePort();
  const service = spawnService(
    'worker',
    serviceEnv(`postgres://postgres@127.0.0.1:${port}/nowhere`, { DATABASE_WAIT_SECONDS: '2' }),
  );
  const { code } = await service.exited;
  t.is(code, 1);
  const fatal = service.lines.find((line) => line.level === 60);
  t.regex(fatal?.msg ?? '', new RegExp(`the database at 127\\.0\\.0\\.1:${port} did not answer within 2 s`));
});

/** One request on a keep-alive agent; resolves with what came back, or the error code. */
const get = (url: string, agent: http.Agent) =>
  new Promise<{ status?: number; connection?: string | undefined; error?: string }>((resolve) => {
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      })
      .on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });

test('SIGTERM drains: readyz 503, Connection: close, in-flight and just-opened requests answered, exit 0 quickly', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  // bcrypt at cost 13 keeps a registration in flight long enough to send the signal under it.
  const service = spawnService('web', serviceEnv(database.url, { BCRYPT_COST: '13' }));
  t.teardown(() => service.child.kill('SIGKILL'));
  const baseUrl = await listeningUrl(service);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.is((await get(`${baseUrl}/healthz`, agent)).status, 200); // a keep-alive connection, open and idle

  const early = net.connect(Number(new URL(baseUrl).port), '127.0.0.1'); // opened before the signal
  await once(early, 'connect');
  // A registration sent whole before the signal (its bytes written on an open connection), answered after.
  const registering = net.connect(Number(new URL(baseUrl).port), '127.0.0.1');
  await once(registering, 'connect');
  const answer: Buffer[] = [];
  registering.on('data', (chunk) => answer.push(chunk));
  const body = JSON.stringify({ email: 'in-flight@example.com', password: 'password123' });
  await new Promise((resolve) =>
    registering.write(
      `POST /register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      resolve,
    ),
  );
  let answeredAt = 0;
  const inFlight = once(registering, 'close').then(() => {
    answeredAt = Date.now();
    return Buffer.concat(answer).toString();
  });
  const signalled = Date.now();
  service.child.kill('SIGTERM');
  await service.waitFor((line) => line.msg === 'shutting down');

  // The busy keep-alive client is told to go: its next answer closes the connection.
  const busy = [];
  for (let i = 0; i < 50; i++) {
    const reply = await get(`${baseUrl}/readyz`, agent);
    busy.push(reply);
    if (reply.connection === 'close' || reply.error) break;
  }
  t.deepEqual(busy.at(-1), { status: 503, connection: 'close' }, JSON.stringify(busy));
  t.true(
    busy.every((reply) => !reply.error),
    'no request of the busy client was dropped',
  );

  // The connection opened before the signal sends its request now, and is answered.
  const chunks: Buffer[] = [];
  early.on('data', (chunk) => chunks.push(chunk));
  early.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await once(early, 'close');
  t.regex(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*connection: close/i);

  t.regex(await inFlight, /^HTTP\/1\.1 201 Created\r\n/, 'the request in flight at the signal finished');
  const { code } = await service.exited;
  t.is(code, 0, 'stopped on its own, before the forced exit at 10 s (which exits 1)');
  const took = Date.now() - signalled;
  const afterLast = Date.now() - answeredAt;
  t.log(`exited ${took} ms after SIGTERM, ${afterLast} ms after the last request in flight was answered`);
  // What the shutdown adds once the work in flight is done (a bcrypt of cost 13: seconds on a loaded machine).
  t.true(afterLast < 5_000, `${afterLast} ms after the last answer`);
});
