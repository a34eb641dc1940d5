import test from 'ava';
import pg from 'pg';
import { setQueryTimeout } from '../src/db/queryTimeout.ts';
import { createTestDatabase } from './helpers/db.ts';
import { tcpProxy } from './helpers/proxy.ts';

// Process-wide, as createDb sets it; 1 s here.
setQueryTimeout(1_000);

async function connected(url: string, t: { teardown(fn: () => Promise<void> | void): void }) {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {}); // a connection the sweep closed reports itself; its queries fail anyway
  await client.connect();
  t.teardown(() => client.end().catch(() => {}));
  return client;
}

test('queries answer as pg answers them, as a promise or through a callback', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const client = await connected(database.url, t);
  const viaPromise = await client.query<{ n: number; s: string }>('select $1::int as n, $2::text as s', [7, 'x']);
  t.deepEqual(viaPromise.rows, [{ n: 7, s: 'x' }]);
  t.is(viaPromise.command, 'SELECT');
  const viaCallback = await new Promise<pg.QueryResult>((resolve, reject) => {
    client.query('select 1 as one', (error: Error | null, result: pg.QueryResult) =>
      error ? reject(error) : resolve(result),
    );
  });
  t.deepEqual(viaCallback.rows, [{ one: 1 }]);
  const error = await t.throwsAsync(client.query('select * from no_such_table'));
  t.true(error instanceof pg.DatabaseError);
  t.is((error as pg.DatabaseError).code, '42P01');
  t.regex(error?.stack ?? '', /queryTimeout\.ts/); // a stack from the query's caller side, not the socket read
  t.deepEqual((await client.query('select 2 as two')).rows, [{ two: 2 }]); // the connection is still usable
});

test('a query with no answer (a partition) fails within the timeout, and its connection is closed', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const proxy = await tcpProxy(new URL(database.url));
  t.teardown(() => proxy.cut());
  const client = await connected(proxy.url, t);
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  proxy.blackhole();
  const started = performance.now();
  const error = await t.throwsAsync(client.query('select 1'));
  const ms = performance.now() - started;
  t.is(error?.message, 'Query read timeout');
  t.true(ms >= 1_000 && ms < 2_000, `failed after ${Math.round(ms)} ms`);
  await ended;
  proxy.heal();
  await t.throwsAsync(client.query('select 1')); // never used again
});

test("a client with a query_timeout of its own keeps pg's", async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const proxy = await tcpProxy(new URL(database.url));
  t.teardown(() => proxy.cut());
  const client = new pg.Client({ connectionString: proxy.url, query_timeout: 300 });
  client.on('error', () => {});
  await client.connect();
  t.teardown(() => client.end().catch(() => {}));
  proxy.blackhole();
  const started = performance.now();
  const error = await t.throwsAsync(client.query('select 1'));
  t.is(error?.message, 'Query read timeout');
  t.true(performance.now() - started < 900);
});
