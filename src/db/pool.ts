import {
  createPool,
  createTypeParserPreset,
  type DatabasePool,
  type Interceptor,
  type QueryContext,
  type QueryResultRow,
  SchemaValidationError,
  sql,
} from 'slonik';
import { z } from 'zod';
import { timestamptzToIso } from './columns.ts';
import { setQueryTimeout } from './queryTimeout.ts';
import { rowReader } from './rowReader.ts';

/**
 * Checks a row against the zod type its query was built with (`sql.type(row)`), so what the domain
 * gets is what the types say; a mismatch is a SchemaValidationError, never a silently wrong value. Flat
 * rows of plain columns (most of them) are checked by a reader worked out once per type (rowReader.ts);
 * zod checks the others, and says what is wrong with a row the reader refuses.
 *
 * Synchronous on purpose: slonik runs `transformRowAsync` through a queue of promises per query, which
 * cost about a seventh of a web process's CPU under load, and every row type here is a plain synchronous
 * zod schema (one with an async refinement would make this throw, never pass a row unchecked).
 */
export function checkRow(
  parser: NonNullable<QueryContext['resultParser']>,
  query: { sql: string; values: readonly unknown[] },
  row: QueryResultRow,
): QueryResultRow {
  const read = rowReader(parser as z.ZodType)?.(row);
  if (read) return read as QueryResultRow;
  const result = parser['~standard'].validate(row);
  if (result instanceof Promise) throw new TypeError('row types must be synchronous zod schemas');
  if (result.issues) throw new SchemaValidationError(query as never, row, result.issues);
  return result.value as QueryResultRow;
}

const resultParser: Interceptor = {
  name: 'result-parser',
  transformRow: (context, query, row) => (context.resultParser ? checkRow(context.resultParser, query, row) : row),
};

const okRow = z.object({ ok: z.number() });

export type PoolSettings = { maximumPoolSize: number; queryTimeoutMs: number };

/**
 * The API's connection pool. Timeouts bound what a network partition can do (dropped packets, not refused
 * connections): connecting gives up after 5 s, and a query whose answer does not come within
 * `queryTimeoutMs` fails; slonik then destroys that connection rather than reuse it, so the pool heals
 * by itself once the network does.
 *
 * slonik's pg driver passes no client-side query timeout of its own: the timeout is process-wide, for every
 * pg client (queryTimeout.ts; pg-boss's pool gets the same value as its own `query_timeout`).
 *
 * The pool sends no startup parameters beyond pg's own (slonik's default `statement_timeout` and
 * `idle_in_transaction_session_timeout` ones are refused by PgBouncer in transaction mode); the
 * server-side bounds are the role's defaults instead (`sessionBounds.ts`).
 */
export async function createDb(url: string, settings: PoolSettings): Promise<DatabasePool> {
  setQueryTimeout(settings.queryTimeoutMs);
  return createPool(url, {
    interceptors: [resultParser],
    // slonik sends DISCARD ALL whenever a connection returns to the pool: one more round trip for every
    // request. Nothing here leaves session state behind (no SET, temporary table, session advisory lock,
    // LISTEN or named statement on this pool; transactions end in COMMIT or ROLLBACK, or slonik destroys
    // the connection), so there is nothing to discard.
    resetConnection: async () => {},
    // timestamptz as the API's ISO text directly (slonik's parser gives epoch milliseconds, which every row
    // then turned into a Date and back into text).
    typeParsers: [
      ...createTypeParserPreset().filter((parser) => parser.name !== 'timestamptz'),
      { name: 'timestamptz', parse: timestamptzToIso },
    ],
    maximumPoolSize: settings.maximumPoolSize,
    connectionTimeout: 5_000,
    statementTimeout: 'DISABLE_TIMEOUT',
    idleInTransactionSessionTimeout: 'DISABLE_TIMEOUT',
  });
}

/** True when Postgres answers a trivial query within `timeoutMs`. */
export async function isDatabaseReady(db: DatabasePool, timeoutMs: number): Promise<boolean> {
  const check = db.oneFirst(sql.type(okRow)`select 1 as ok`).then(
    () => true,
    () => false,
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([check, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
