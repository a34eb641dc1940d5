import type { Db as BossDb } from 'pg-boss';
import type { CommonQueryMethods, QuerySqlToken } from 'slonik';
import { z } from 'zod';

const anyRow = z.unknown();

/**
 * Lets pg-boss run its statements on a slonik connection, typically a transaction: `boss.send(name, data,
 * { db: bossDb(tx) })` then commits or rolls back together with the rows written on `tx`.
 *
 * slonik has no public raw-query call, but a query token is a plain object tagged
 * `Symbol.for('SLONIK_TOKEN_QUERY')` whose text and values reach the driver unchanged; pg-boss's SQL
 * already uses `$1` placeholders, so it passes through as it is.
 */
export function bossDb(connection: CommonQueryMethods): BossDb {
  return {
    async executeSql(text, values = []) {
      const token = {
        type: Symbol.for('SLONIK_TOKEN_QUERY'),
        sql: text,
        values,
        parser: anyRow,
      } as unknown as QuerySqlToken<typeof anyRow>;
      const result = await connection.query(token);
      return { rows: [...result.rows] };
    },
  };
}
