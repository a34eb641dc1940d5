import test from 'ava';
import { createDb } from '../src/db/pool.ts';
import { createActorCache } from '../src/http/actorCache.ts';
import { createTestDatabase, query } from './helpers/db.ts';

async function setUp(t: { teardown(fn: () => unknown): void }) {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const db = await createDb(database.url, { maximumPoolSize: 2, queryTimeoutMs: 15_000 });
  t.teardown(() => db.end());
  const [user] = await query<{ id: number }>(
    database.url,
    `insert into users (email, password_hash) values ('cached@example.com', 'x') returning id::int`,
  );
  const setRole = (role: string) => query(database.url, 'update users set role = $2 where id = $1', [user?.id, role]);
  return { db, id: user?.id ?? 0, setRole };
}

test('while listening, a read is cached until the user is forgotten', async (t) => {
  const { db, id, setRole } = await setUp(t);
  const cache = createActorCache();
  cache.setListening(true);
  t.is((await cache.read(db, id))?.role, 'user');
  await setRole('admin'); // the trigger's notification is what `forget` stands for here
  t.is((await cache.read(db, id))?.role, 'user', 'served from the cache');
  cache.forget([id]);
  t.is((await cache.read(db, id))?.role, 'admin');
});

test('a read in flight while a user is forgotten is not kept', async (t) => {
  const { db, id, setRole } = await setUp(t);
  const cache = createActorCache();
  cache.setListening(true);
  const reading = cache.read(db, id);
  cache.forget([id]); // a change announced while the read was on its way: its answer may predate it
  t.is((await reading)?.role, 'user');
  await setRole('admin');
  t.is((await cache.read(db, id))?.role, 'admin', 'read again, not the answer from before the change');
});

test('without the LISTEN connection nothing is cached, and a lost connection empties the cache', async (t) => {
  const { db, id, setRole } = await setUp(t);
  const cache = createActorCache();
  t.is((await cache.read(db, id))?.role, 'user');
  await setRole('admin');
  t.is((await cache.read(db, id))?.role, 'admin', 'not listening: every read is fresh');
  cache.setListening(true);
  t.is((await cache.read(db, id))?.role, 'admin');
  cache.setListening(false); // the connection dropped: notifications may be lost from now on
  await setRole('user');
  t.is((await cache.read(db, id))?.role, 'user');
});
