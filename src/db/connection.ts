import type { Db as BossDb } from 'pg-boss';
import { type CommonQueryMethods, DataIntegrityError, NotFoundError, type QueryResultRow } from 'slonik';
import { checkRow } from './pool.ts';

/**
 * What a domain statement runs on. Every statement is written one way, as a slonik `sql.type(row)` token,
 * and runs on either pool: a slonik pool, connection or transaction (the API) is a Connection as it is;
 * pg-boss's pool or one of its transactions (the worker, which has no other pool) becomes one through
 * `onBossDb`. Rows reach the domain checked against their type and alike on both sides.
 */
export type Connection = Pick<CommonQueryMethods, 'any' | 'maybeOne' | 'one' | 'oneFirst'>;

const INT8 = 20;
const NUMERIC = 1700;
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;
type Field = { name: string; dataTypeID: number };

/**
 * node-postgres's values (pg-boss's pool) as the API pool's type parsers give them (pool.ts): int8 as
 * BigInt, numeric as a number, timestamptz as ISO 8601 text in UTC, timestamp as epoch milliseconds.
 */
function slonikValues(fields: readonly Field[]): ((row: Record<string, unknown>) => Record<string, unknown>) | null {
  const changes: [string, (value: unknown) => unknown][] = [];
  for (const { name, dataTypeID } of fields) {
    if (dataTypeID === INT8) changes.push([name, (value) => BigInt(value as string)]);
    else if (dataTypeID === NUMERIC) changes.push([name, Number]);
    else if (dataTypeID === TIMESTAMPTZ) changes.push([name, (value) => (value as Date).toISOString()]);
    else if (dataTypeID === TIMESTAMP) changes.push([name, (value) => (value as Date).getTime()]);
  }
  if (changes.length === 0) return null;
  return (row) => {
    const copy = { ...row };
    for (const [name, change] of changes)
      if (copy[name] !== null && copy[name] !== undefined) copy[name] = change(copy[name]);
    return copy;
  };
}

/** The statements' rows on pg-boss's `db`, converted and checked as the API pool does. */
async function rowsOf(db: BossDb, token: Parameters<Connection['any']>[0]): Promise<QueryResultRow[]> {
  // slonik writes its placeholders `$slonik_N` and sends them as `$N` (checked at start: db/internals.ts).
  const text = token.sql.replaceAll('$slonik_', '$');
  const result = (await db.executeSql(text, [...token.values])) as {
    rows: Record<string, unknown>[];
    fields?: Field[];
  };
  const convert = slonikValues(result.fields ?? []);
  return result.rows.map((row) => checkRow(token.parser, token, (convert ? convert(row) : row) as QueryResultRow));
}

/** The one row, as slonik's `one` gives it. */
async function oneRow(db: BossDb, token: Parameters<Connection['any']>[0]): Promise<QueryResultRow> {
  const rows = await rowsOf(db, token);
  if (rows.length === 0) throw new NotFoundError('Resource not found.', token as never);
  if (rows.length > 1) throw new DataIntegrityError('Query returns more than one row.', token as never);
  return rows[0] as QueryResultRow;
}

/** pg-boss's pool or transaction as a Connection: slonik tokens run there with slonik's row rules. */
export function onBossDb(db: BossDb): Connection {
  return {
    any: (async (token) => rowsOf(db, token)) as Connection['any'],
    one: ((token) => oneRow(db, token)) as Connection['one'],
    async maybeOne(token) {
      const rows = await rowsOf(db, token);
      if (rows.length > 1) throw new DataIntegrityError('Query returns more than one row.', token as never);
      return (rows[0] ?? null) as never;
    },
    oneFirst: (async (token) => {
      const row = await oneRow(db, token);
      const keys = Object.keys(row);
      if (keys.length !== 1) throw new DataIntegrityError('Expected one column.', token as never);
      return row[keys[0] as string];
    }) as Connection['oneFirst'],
  };
}
