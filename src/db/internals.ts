import { createRequire } from 'node:module';
import pg from 'pg';
import type { Db } from 'pg-boss';
import { sql } from 'slonik';
import { z } from 'zod';
import { onBossDb } from './connection.ts';
import { BOSS_SCHEMA } from './queues.ts';

/**
 * What this service leans on inside its libraries, beyond their documented APIs (docs/design.md: Dependencies),
 * checked once when a process starts, so that an upgrade that moved one fails the start with a message
 * naming the package and its version, rather than misbehaving later (the query timeout's sweep, during the
 * very partition it exists for):
 * - pg: `Client.prototype.query` (patched for the timeout sweep, src/db/queryTimeout.ts) and a client's
 *   `connection.stream` (the sweep closes it);
 * - slonik: a query token is an object tagged `Symbol.for('SLONIK_TOKEN_QUERY')` (src/db/rawQuery.ts), its
 *   placeholders written `$slonik_N` (src/db/connection.ts sends them to pg-boss's pool as `$N`);
 * - zod: a schema's `_zod.def` with `type` and, for objects, `shape` (src/db/rowReader.ts);
 * - pg-boss: its job table's `blocked`, `group_id`, `pending_dependencies` and `start_after` columns
 *   (src/db/parking.ts, the wake timer's and the reconciliation's reads), checked against the database.
 */

const require = createRequire(import.meta.url);
const versionOf = (name: string) => (require(`${name}/package.json`) as { version: string }).version;

export class InternalsChanged extends Error {
  override name = 'InternalsChanged';
}

const changed = (name: string, what: string) =>
  new InternalsChanged(
    `${name} ${versionOf(name)}: ${what} is not as this service expects (docs/design.md: Dependencies)`,
  );

/** The libraries' shapes this process uses. @throws InternalsChanged naming the package and version. */
export function checkLibraryInternals(): void {
  if (typeof pg.Client.prototype.query !== 'function') throw changed('pg', 'Client.prototype.query');
  const client = new pg.Client({}) as unknown as { connection?: { stream?: { destroy?: unknown } } };
  if (typeof client.connection?.stream?.destroy !== 'function') throw changed('pg', "a client's connection.stream");
  const token = sql.unsafe`select ${1}` as unknown as { type?: unknown; sql?: unknown; values?: unknown };
  if (
    token.type !== Symbol.for('SLONIK_TOKEN_QUERY') ||
    token.sql !== 'select $slonik_1' ||
    !Array.isArray(token.values)
  ) {
    throw changed('slonik', 'a query token (its SLONIK_TOKEN_QUERY tag, sql with $slonik_N placeholders, and values)');
  }
  const def = (z.object({ a: z.string().nullable() }) as unknown as { _zod?: { def?: Record<string, unknown> } })._zod
    ?.def as { type?: string; shape?: Record<string, { _zod?: { def?: { type?: string } } }> } | undefined;
  if (def?.type !== 'object' || def.shape?.a?._zod?.def?.type !== 'nullable') {
    throw changed('zod', "a schema's _zod.def (type and shape)");
  }
}

const BOSS_COLUMNS = [
  ['job', 'blocked'],
  ['job', 'group_id'],
  ['job', 'pending_dependencies'],
  ['job', 'start_after'],
] as const;
const columnsRow = z.object({ table_name: z.string(), column_name: z.string() });

/**
 * pg-boss's tables as this service writes to them directly, on `db` (after pg-boss has installed or
 * checked its schema). @throws InternalsChanged naming pg-boss's version and the missing columns.
 */
export async function checkBossSchema(db: Db, schema = BOSS_SCHEMA): Promise<void> {
  const rows = await onBossDb(db).any(sql.type(columnsRow)`
    select table_name, column_name from information_schema.columns
    where table_schema = ${schema}
      and table_name || '.' || column_name = any(${sql.array(
        BOSS_COLUMNS.map(([table, column]) => `${table}.${column}`),
        'text',
      )})`);
  const found = new Set(rows.map((row) => `${row.table_name}.${row.column_name}`));
  const missing = BOSS_COLUMNS.map(([table, column]) => `${table}.${column}`).filter((name) => !found.has(name));
  if (missing.length > 0) throw changed('pg-boss', `its tables (missing ${missing.join(', ')})`);
}
