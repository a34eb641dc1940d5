import path from 'node:path';
import pg from 'pg';
import { projectDir } from '../src/config.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { startBoss } from '../src/jobs/boss.ts';
import type { Logger } from '../src/log.ts';

let server: { adminUrl: string; stop(): Promise<void> } | null = null;
let open = 0;

/**
 * A fresh database named `name` for a benchmark, with the migrations and pg-boss's schema: on the embedded
 * Postgres (a data folder of the benchmarks' own, started once per process however many databases a part
 * asks for), or on BENCH_DATABASE_URL's server.
 */
export async function benchDatabase(name: string, log: Logger): Promise<{ url: string; stop(): Promise<void> }> {
  if (!server) {
    const embedded = process.env.BENCH_DATABASE_URL
      ? null
      : await startEmbeddedPostgres({ dataDir: path.join(projectDir, '.data', 'bench'), port: 54349, log });
    server = {
      adminUrl: process.env.BENCH_DATABASE_URL ?? embedded?.adminUrl ?? '',
      stop: async () => embedded?.stop(),
    };
  }
  open++;
  const admin = new pg.Client(server.adminUrl);
  await admin.connect();
  await admin.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
  await admin.query(`create database ${pg.escapeIdentifier(name)}`);
  await admin.end();
  const url = Object.assign(new URL(server.adminUrl), { pathname: `/${name}` }).toString();
  await migrate(url, log);
  // pg-boss's schema and the queue, as the release step installs them.
  const boss = await startBoss({ url, log, role: 'migrate', poolSize: 1 });
  await boss.stop({ graceful: false });
  return {
    url,
    // The server stops with the last database of the process.
    async stop() {
      if (--open === 0) {
        await server?.stop();
        server = null;
      }
    },
  };
}
