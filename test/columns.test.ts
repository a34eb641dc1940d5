import test from 'ava';
import pg from 'pg';
import { timestamptzToIso } from '../src/db/columns.ts';
import { createTestDatabase } from './helpers/db.ts';

// Postgres's own rendering in UTC, with milliseconds cut as Date.parse cuts them, is the expected value.
const instants = `
  select t, to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as expected
  from (values (now()), (timestamptz '1970-01-01 00:00:00+00'), (timestamptz '1999-12-31 23:59:59.999999+00'),
               (timestamptz '2026-12-02 16:33:28.1+00'), (timestamptz '2026-03-29 01:30:00+00'),
               (timestamptz '2026-10-25 00:59:59.5+00'), (timestamptz '0999-01-01 12:00:00+00')) v(t)
  union all
  select t, to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
  from (select now() - random() * interval '3650 days' as t from generate_series(1, 200)) r`;

for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham', 'Europe/Paris']) {
  test(`timestamptz text becomes the API's ISO 8601 in UTC, in a session whose TimeZone is ${zone}`, async (t) => {
    const database = await createTestDatabase();
    t.teardown(() => database.drop());
    // The text as Postgres sends it: no parser of pg's.
    const client = new pg.Client({
      connectionString: database.url,
      types: { getTypeParser: () => (text: string) => text },
    });
    await client.connect();
    t.teardown(() => client.end());
    await client.query(`set timezone = '${zone}'`);
    const { rows } = await client.query<{ t: string; expected: string }>(instants);
    t.is(rows.length, 207);
    const wrong = rows.filter((row) => timestamptzToIso(row.t) !== row.expected);
    t.deepEqual(
      wrong.map((row) => [row.t, timestamptzToIso(row.t), row.expected]),
      [],
    );
  });
}
