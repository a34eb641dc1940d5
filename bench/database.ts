import path from 'node:path';
import pg from 'pg';
import { projectDir } from '../src/config.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { startBoss } from '../src/jobs/queue.ts';
import type { Logger } from '../src/log.ts';

/**
 * A fresh database named `name` for a benchmark, with the migrations and pg-boss's schema: on the embedded Postgres (a data folder of
 * the benchmarks' own), or on BENCH_DATABASE_URL's server.
 */
export async function benchDatabase(name: string, log: Logger): Promise<{ url: string; stop(): Promise<void> }> {
  const embedded = process.env.BENCH_DATABASE_URL
    ? null
    : await startEmbeddedPostgres({ dataDir: path.join(projectDir, '.data', 'bench'), port: 54349, log });
  const adminUrl = process.env.BENCH_DATABASE_URL ?? embedded?.adminUrl ?? '';
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  await admin.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
  await admin.query(`create database ${pg.escapeIdentifier(name)}`);
  await admin.end();
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  await migrate(url, log);
  // pg-boss's schema and the queue, as the release step installs them.
  const boss = await startBoss({ url, log, role: 'migrate', poolSize: 1 });
  await boss.stop({ graceful: false });
  return { url, stop: async () => embedded?.stop() };
}
