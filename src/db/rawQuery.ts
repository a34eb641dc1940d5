import type { CommonQueryMethods, QuerySqlToken } from 'slonik';
import { z } from 'zod';

const anyRow = z.unknown();

/**
 * Runs SQL written by a library (pg-boss, rate-limiter-flexible) on a slonik connection or pool, with
 * `$1` placeholders as they are. slonik has no public raw-query call, but a query token is a plain object
 * tagged `Symbol.for('SLONIK_TOKEN_QUERY')` whose text and values reach the driver unchanged.
 */
export async function rawQuery(
  connection: CommonQueryMethods,
  text: string,
  values: readonly unknown[] = [],
): Promise<{ rows: unknown[]; rowCount: number; fields: readonly { name: string; dataTypeId: number }[] }> {
  const token = {
    type: Symbol.for('SLONIK_TOKEN_QUERY'),
    sql: text,
    values,
    parser: anyRow,
  } as unknown as QuerySqlToken<typeof anyRow>;
  const result = await connection.query(token);
  return { rows: [...result.rows], rowCount: result.rowCount, fields: result.fields };
}
