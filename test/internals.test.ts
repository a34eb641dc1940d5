/** What the service leans on inside its libraries is checked at start, and a missing piece is named. */
import test from 'ava';
import { bossDb } from '../src/db/bossDb.ts';
import { checkBossSchema, checkLibraryInternals, InternalsChanged } from '../src/db/internals.ts';
import { createDb } from '../src/db/pool.ts';
import { createTestDatabase, query } from './helpers/db.ts';

test('the installed pg, slonik and zod have the shapes the service leans on', (t) => {
  t.notThrows(() => checkLibraryInternals());
});

test("pg-boss's tables have the columns the service writes; a missing one stops the start, named", async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const db = await createDb(database.url, { maximumPoolSize: 1, queryTimeoutMs: 15_000 });
  t.teardown(() => db.end());
  await t.notThrowsAsync(checkBossSchema(bossDb(db)));
  await query(database.url, 'alter table pgboss.job rename column blocked to blocked_renamed');
  const error = await t.throwsAsync(checkBossSchema(bossDb(db)), { instanceOf: InternalsChanged });
  t.regex(error?.message ?? '', /^pg-boss \d+\.\d+\.\d+: its tables \(missing job\.blocked\)/);
});
