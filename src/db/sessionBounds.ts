import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Logger } from '../log.ts';
import type { Connection } from './connection.ts';

const statementTimeoutRow = z.object({ statement_timeout: z.string() });

/**
 * Server-side bounds on every session of the service's role in its database: a statement that runs longer
 * than this is cancelled, and a transaction left idle this long ends its session (slonik destroys a
 * connection that errors, so the pool heals).
 *
 * They are the role's defaults in this database (`ALTER ROLE ... IN DATABASE ... SET`), not startup
 * parameters: a pooler in transaction mode (PgBouncer, Supabase's, Neon's) refuses startup parameters it
 * does not know, and a session-level SET through it would land on whichever server connection it lent.
 * Postgres applies role defaults when a server connection starts, so they hold whatever sits between.
 * A migration that needs longer says so inside its own transaction (`set local statement_timeout = 0`).
 */
const SESSION_BOUNDS = {
  statement_timeout: '30s',
  idle_in_transaction_session_timeout: '60s',
} as const;

/** Makes SESSION_BOUNDS the defaults of the current role in the current database (both are names, hence format). */
export const SESSION_BOUNDS_SQL = `do $bounds$
begin
  execute format('alter role current_user in database %I set statement_timeout = %L',
    current_database(), '${SESSION_BOUNDS.statement_timeout}');
  execute format('alter role current_user in database %I set idle_in_transaction_session_timeout = %L',
    current_database(), '${SESSION_BOUNDS.idle_in_transaction_session_timeout}');
end
$bounds$`;

/**
 * Run by the release step on the direct connection. Needs no special privilege (every role may set its
 * own defaults); where a platform still refuses, it warns rather than fail the release.
 */
export async function applySessionBounds(url: string, log: Logger): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(SESSION_BOUNDS_SQL);
  } catch (error) {
    log.warn(
      { err: error, bounds: SESSION_BOUNDS },
      'could not set the server-side session bounds on this role; statements are bounded by the client-side query timeout only',
    );
  } finally {
    await client.end();
  }
}

/** Warns when the sessions this process gets carry no statement bound (the release step has not run). */
export async function checkSessionBounds(db: Connection, log: Logger): Promise<void> {
  const value = await db.oneFirst(sql.type(statementTimeoutRow)`show statement_timeout`);
  if (value === '0') {
    log.warn(
      { statement_timeout: value },
      'the database sessions have no statement_timeout: run the release step (`node src/main.ts migrate`) to set the server-side bounds',
    );
  }
}
