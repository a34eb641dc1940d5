import {
  createPool,
  type DatabasePool,
  type Interceptor,
  type QueryResultRow,
  SchemaValidationError,
  sql,
} from 'slonik';
import { z } from 'zod';

/**
 * Checks every row against the zod type its query was built with (`sql.type(row)`), so what the domain
 * gets is what the types say; a mismatch is a SchemaValidationError, never a silently wrong value.
 */
const resultParser: Interceptor = {
  name: 'result-parser',
  transformRowAsync: async (context, query, row) => {
    const parser = context.resultParser;
    if (!parser) return row;
    const result = await parser['~standard'].validate(row);
    if (result.issues) throw new SchemaValidationError(query, row, result.issues);
    return result.value as QueryResultRow;
  },
};

export async function createDb(url: string, options: { maximumPoolSize: number }): Promise<DatabasePool> {
  return createPool(url, {
    interceptors: [resultParser],
    maximumPoolSize: options.maximumPoolSize,
    connectionTimeout: 5_000,
    statementTimeout: 30_000,
    idleInTransactionSessionTimeout: 60_000,
  });
}

/** True when Postgres answers a trivial query within the pool's connection timeout. */
export async function isDatabaseReady(db: DatabasePool): Promise<boolean> {
  try {
    await db.oneFirst(sql.type(z.object({ ok: z.number() }))`select 1 as ok`);
    return true;
  } catch {
    return false;
  }
}
