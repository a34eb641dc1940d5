import test from 'ava';
import { type DatabasePool, SchemaValidationError, sql } from 'slonik';
import { z } from 'zod';
import { idColumn, timestampColumn } from '../src/db/columns.ts';
import { createDb } from '../src/db/pool.ts';
import { rowReader } from '../src/db/rowReader.ts';
import { taskRow } from '../src/domain/tasks/task.ts';
import { userRow } from '../src/domain/users/user.ts';
import { createTestDatabase } from './helpers/db.ts';

async function pool(t: { teardown(fn: () => Promise<void>): void }): Promise<DatabasePool> {
  const database = await createTestDatabase();
  const db = await createDb(database.url, { maximumPoolSize: 2, queryTimeoutMs: 5_000 });
  t.teardown(async () => {
    await db.end();
    await database.drop();
  });
  return db;
}

// Rows as the pool's type parsers give them (ids as BigInt, timestamps as ISO text), before any row type.
const taskColumns = sql.fragment`id, user_id, title, description, status, due_at, completed_at, created_at, updated_at, job_id, schedule_id`;

test('a flat row type is read as zod reads it: same values, same keys in the same order, other columns dropped', async (t) => {
  const db = await pool(t);
  const user = (await db.one(sql.unsafe`insert into users (email, password_hash) values ('r@example.com', 'x')
    returning id, email, role, created_at, password_hash`)) as Record<string, unknown>;
  await db.query(sql.unsafe`insert into tasks (user_id, title, description, job_id, due_at)
    values (${user.id as bigint}, 'a', '', gen_random_uuid(), now()), (${user.id as bigint}, 'b', 'd', null, now())`);
  await db.query(sql.unsafe`update tasks set status = 'completed', completed_at = now() where title = 'b'`);
  const tasks = (await db.any(
    sql.unsafe`select ${taskColumns}, 42 as extra from tasks order by id`,
  )) as readonly Record<string, unknown>[];
  t.is(tasks.length, 2);
  const cases: [z.ZodType, readonly Record<string, unknown>[]][] = [
    [taskRow, tasks],
    [userRow, [user]],
  ];
  for (const [type, rows] of cases) {
    const read = rowReader(type);
    if (!read) return t.fail('a flat row type has a reader');
    for (const row of rows) {
      const expected = type.parse(row);
      const actual = read({ ...row });
      t.deepEqual(actual, expected);
      t.is(JSON.stringify(actual), JSON.stringify(expected)); // key order too: it is the response's
    }
  }
});

test('a row the reader refuses is refused by zod too, with what is wrong', async (t) => {
  const db = await pool(t);
  const reader = rowReader(taskRow);
  if (!reader) return t.fail();
  const good = {
    id: 1n,
    user_id: 2n,
    title: 't',
    description: '',
    status: 'pending',
    due_at: '2026-12-02T00:00:00.000Z',
    completed_at: null,
    created_at: '2026-12-02T00:00:00.000Z',
    updated_at: '2026-12-02T00:00:00.000Z',
    job_id: null,
    schedule_id: null,
  };
  t.truthy(reader(good));
  const bad: Record<string, unknown>[] = [
    { ...good, status: 'done' }, // not one of the enum's values
    { ...good, id: 1 }, // an id that did not come from a bigint column
    { ...good, title: null }, // null where the type does not allow it
    { ...good, due_at: undefined }, // a missing column
  ];
  for (const row of bad) {
    t.is(reader(row), undefined);
    t.false(taskRow.safeParse(row).success);
  }
  const numbers = rowReader(z.object({ n: z.number() }));
  if (!numbers) return t.fail('a number column has a reader');
  t.deepEqual(numbers({ n: 1.5 }), { n: 1.5 });
  for (const n of [Number.NaN, Number.POSITIVE_INFINITY, '1']) t.is(numbers({ n }), undefined);

  // Through the pool: a query whose rows do not fit its type fails with the field named.
  const error = await t.throwsAsync(
    db.one(sql.type(taskRow)`select ${taskColumns} from (select
      1::bigint as id, 1::bigint as user_id, 't' as title, '' as description, 'done' as status,
      now() as due_at, null::timestamptz as completed_at, now() as created_at, now() as updated_at,
      null::uuid as job_id, null::bigint as schedule_id) r`),
  );
  t.true(error instanceof SchemaValidationError);
  t.regex(JSON.stringify((error as SchemaValidationError).issues), /status/);
});

test('row types with refinements, optional keys or other kinds are left to zod', (t) => {
  t.is(rowReader(z.object({ email: z.string().min(3) })), null);
  t.is(rowReader(z.object({ count: z.number().int() })), null);
  t.is(rowReader(z.object({ a: z.string().optional() })), null);
  t.is(rowReader(z.strictObject({ a: z.string() })), null);
  t.is(rowReader(z.object({ a: z.string() }).refine(() => true)), null);
  t.is(rowReader(z.object({ at: z.coerce.date() })), null);
  t.is(rowReader(z.unknown()), null);
  t.not(rowReader(z.object({ id: idColumn, at: timestampColumn.nullable(), ok: z.boolean() })), null);
});
