import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './proxy.ts';

/** Debian's PgBouncer (`.ci/run` installs it when missing). */
export const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((file) => existsSync(file));

export type PgBouncer = {
  /** The URL of `database` through the pooler. */
  url(database: string): string;
  /** A statement on PgBouncer's admin console (`SHOW STATS`, `SHOW POOLS`). */
  admin<R extends pg.QueryResultRow>(statement: string): Promise<R[]>;
  stop(): Promise<void>;
};

/**
 * PgBouncer in transaction mode, with its default settings otherwise (no `ignore_startup_parameters`),
 * on a free port in front of the server `serverUrl` names; every database name passes through to it.
 * Clients log in as anyone (`auth_type = any`); PgBouncer logs in to the server with `serverUrl`'s
 * credentials. As root it runs as the `postgres` user (it refuses to run as root).
 */
export async function startPgBouncer(serverUrl: string, defaultPoolSize: number): Promise<PgBouncer> {
  if (!PGBOUNCER) throw new Error('pgbouncer is not installed');
  const server = new URL(serverUrl);
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'pgbouncer-'));
  await chmod(dir, 0o755);
  const password = server.password ? ` password=${decodeURIComponent(server.password)}` : '';
  const config = path.join(dir, 'pgbouncer.ini');
  await writeFile(
    config,
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432} user=${decodeURIComponent(server.username)}${password}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = any',
      'admin_users = postgres',
      'pool_mode = transaction',
      `default_pool_size = ${defaultPoolSize}`,
      'max_client_conn = 1000',
      '',
    ].join('\n'),
  );
  await chmod(config, 0o644);
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = spawn(PGBOUNCER, [...(asRoot ? ['-u', 'postgres'] : []), config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pgbouncer did not start:\n${output}`)), 10_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('process up')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.on('exit', () => reject(new Error(`pgbouncer exited:\n${output}`)));
  });
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    url,
    async admin(statement) {
      const client = new pg.Client(url('pgbouncer'));
      await client.connect();
      try {
        return (await client.query(statement)).rows;
      } finally {
        await client.end();
      }
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
