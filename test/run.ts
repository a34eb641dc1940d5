/**
 * `npm test`'s runner: gets a Postgres (the embedded one, or TEST_DATABASE_URL), builds a template
 * database with every migration and pg-boss's schema, then runs ava. Each test file clones the template
 * (`CREATE DATABASE ... TEMPLATE`), so files run in parallel on databases of their own.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { projectDir } from '../src/config.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { startBoss } from '../src/jobs/queue.ts';
import { createLogger } from '../src/log.ts';

const TEMPLATE = 'task_manager_test_template';
const log = createLogger({ LOG_LEVEL: 'warn' });

const external = process.env.TEST_DATABASE_URL;
const embedded = external
  ? null
  : await startEmbeddedPostgres({
      dataDir: path.join(projectDir, '.data', 'test'),
      port: Number(process.env.TEST_EMBEDDED_PG_PORT ?? 54339),
      log,
    });
const adminUrl = external ?? embedded?.adminUrl ?? '';
const withDatabase = (name: string) => Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();

const admin = new pg.Client(adminUrl);
await admin.connect();
const server = await admin.query<{ server_version: string }>('show server_version');
console.log(
  `test database server: PostgreSQL ${server.rows[0]?.server_version} (${external ? 'external' : 'embedded'})`,
);
const leftovers = await admin.query<{ datname: string }>(
  `select datname from pg_database where datname like 'task_manager_test_%'`,
);
for (const { datname } of leftovers.rows)
  await admin.query(`drop database ${pg.escapeIdentifier(datname)} with (force)`);
await admin.query(`create database ${TEMPLATE}`);
await admin.end();

const templateUrl = withDatabase(TEMPLATE);
await migrate(templateUrl, log);
const boss = await startBoss({ url: templateUrl, log, role: 'migrate', poolSize: 2 });
await boss.stop({ graceful: false });

const ava = spawn(
  process.execPath,
  [path.join(projectDir, 'node_modules/ava/entrypoints/cli.mjs'), ...process.argv.slice(2)],
  {
    stdio: 'inherit',
    env: { ...process.env, TEST_ADMIN_URL: adminUrl, TEST_TEMPLATE: TEMPLATE },
  },
);
const code: number = await new Promise((resolve) => ava.on('exit', (exitCode) => resolve(exitCode ?? 1)));
await embedded?.stop();
process.exit(code);
