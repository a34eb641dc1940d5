import path from 'node:path';
import { runner } from 'node-pg-migrate';
import { projectDir } from '../config.ts';
import type { Logger } from '../log.ts';
import { applySessionBounds } from './sessionBounds.ts';

/**
 * Applies the plain .sql migrations in `sql/` (node-pg-migrate, one transaction for all pending ones).
 * Concurrent callers wait for each other on node-pg-migrate's advisory lock (a session lock: `databaseUrl`
 * is a direct connection, never a pooler in transaction mode). Then sets the role's session bounds.
 */
export async function migrate(databaseUrl: string, log: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: path.join(projectDir, 'sql'),
    direction: 'up',
    migrationsTable: 'pgmigrations',
    singleTransaction: true,
    advisoryLockMode: 'wait',
    log: (message) => log.debug({ migrate: message }),
  });
  const names = applied.map((migration) => migration.name);
  if (names.length > 0) log.info({ migrations: names }, 'applied migrations');
  await applySessionBounds(databaseUrl, log);
  return names;
}
