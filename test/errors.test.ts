/**
 * What the database refuses reaches the client as a 4xx with a code, never a 500: the errors slonik raises
 * for a real Postgres's check, foreign-key and unique violations, mapped by the error middleware.
 */
import test from 'ava';
import { type QuerySqlToken, sql } from 'slonik';
import { z } from 'zod';
import { createDb } from '../src/db/pool.ts';
import { AppError } from '../src/errors.ts';
import { toAppError } from '../src/http/errorMiddleware.ts';
import { createTestDatabase } from './helpers/db.ts';

test('check, foreign-key and unique violations are 400, 409 and 409 with their codes', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const db = await createDb(database.url, { maximumPoolSize: 1, queryTimeoutMs: 15_000 });
  t.teardown(() => db.end());
  const refused = (statement: QuerySqlToken) => db.query(statement).then(() => null, toAppError);
  const none = z.object({});
  const user = await db.oneFirst(
    sql.type(
      z.object({ id: z.number() }),
    )`insert into users (email, password_hash) values ('e@example.com', 'x') returning id::int`,
  );
  // A webhook event type the code would send before its migration allowed it: the check refuses it.
  const check = await refused(sql.type(none)`
    insert into webhook_endpoints (user_id, url, events, secret) values (${user}, 'https://x', '{task.renamed}', 's')`);
  t.like(check, { status: 400, code: 'validation_failed' });
  t.regex(check?.message ?? '', /webhook_endpoints_events_check/);
  const foreign = await refused(sql.type(none)`
    insert into webhook_endpoints (user_id, url, events, secret) values (999999, 'https://x', '{task.created}', 's')`);
  t.like(foreign, { status: 409, code: 'conflict' });
  const unique = await refused(sql.type(none)`insert into users (email, password_hash) values ('e@example.com', 'x')`);
  t.like(unique, { status: 409, code: 'conflict' });
  t.true([check, foreign, unique].every((error) => error instanceof AppError && error.expose));
});

test('an AppError carries its headers: Retry-After with a 429, and a 503 of the database', (t) => {
  const limited = new AppError(429, 'rate_limited', 'slow down', undefined, { 'Retry-After': '7' });
  t.deepEqual(limited.headers, { 'Retry-After': '7' });
  t.deepEqual(toAppError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })).headers, { 'Retry-After': '5' });
});
