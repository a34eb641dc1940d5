/**
 * `npm test`'s runner: gets a Postgres (the embedded one, or TEST_DATABASE_URL), builds a template
 * database with every migration and pg-boss's schema, then runs ava. Each test file clones the template
 * (`CREATE DATABASE ... TEMPLATE`), so files run in parallel on databases of their own.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { projectDir } from '../src/config.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { startBoss } from '../src/jobs/boss.ts';
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
      maxConnections: 400, // test files run several at once, each with services of its own
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

/** Runs ava on these arguments (its own file globs when none) and resolves with its exit code. */
const runAva = (args: string[]) =>
  new Promise<number>((resolve) =>
    spawn(process.execPath, [path.join(projectDir, 'node_modules/ava/entrypoints/cli.mjs'), ...args], {
      stdio: 'inherit',
      env: { ...process.env, TEST_ADMIN_URL: adminUrl, TEST_TEMPLATE: TEMPLATE },
    }).on('exit', (exitCode) => resolve(exitCode ?? 1)),
  );

// Four files run alone, one after the other, after the rest: the query plans on a million tasks take the
// database for half a minute, the web app's check (Chromium) asserts what a person sees within a second,
// the pooler's runs six service processes under load, and the fairness test holds every healthy webhook of
// a minute to 2 s (beside another whole suite, three other files stretched its tail past that); none shares
// the machine with the suite's other timing-sensitive tests, nor with each other.
// Two files at a time (ava's default on two cores). More overlap the files that wait (TEST_CONCURRENCY=6 ran
// the suite in three quarters of the time, the embedded server's connection limit raised for it), but then
// the timing checks (a healthy webhook within 2 s beside a noisy neighbour) fail on this 2-core machine.
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const SOLO = ['test/plans.test.ts', 'test/webApp.test.ts', 'test/pooler.test.ts', 'test/fairness.test.ts'];
const asked = process.argv.slice(2);
let code: number;
if (asked.length > 0) {
  code = await runAva(asked);
} else {
  const files = (await readdir(path.join(projectDir, 'test')))
    .filter((name) => name.endsWith('.test.ts'))
    .map((name) => `test/${name}`)
    .filter((file) => !SOLO.includes(file));
  const timed = async (label: string, args: string[]) => {
    const started = performance.now();
    const exit = await runAva(args);
    phases.push(`${label} ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return exit;
  };
  const phases: string[] = [];
  code = await timed(`${files.length} files, ${concurrency} at a time:`, ['--concurrency', concurrency, ...files]);
  for (const file of SOLO) code = (await timed(`${file}:`, [file])) || code;
  console.log(`\ntest phases: ${phases.join('; ')}`);
}
await embedded?.stop();
process.exit(code);
