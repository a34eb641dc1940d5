import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { ConfigError, configNames, loadConfig, projectDir } from '../src/config.ts';

test('the defaults: 120 s completion delay, bcrypt cost 12, one-hour tokens, a 2 s safety-net poll', (t) => {
  const config = loadConfig({});
  t.is(config.TASK_COMPLETION_DELAY_SECONDS, 120);
  t.is(config.BCRYPT_COST, 12);
  t.is(config.JWT_EXPIRES_IN, 3600);
  t.is(config.WORKER_POLL_INTERVAL_SECONDS, 2);
  t.is(config.NODE_ENV, 'development');
  t.is(config.DATABASE_URL, undefined);
  t.true(Object.isFrozen(config));
});

test('durations take seconds or a unit, and empty variables mean "default"', (t) => {
  t.is(loadConfig({ JWT_EXPIRES_IN: '90' }).JWT_EXPIRES_IN, 90);
  t.is(loadConfig({ JWT_EXPIRES_IN: '15m' }).JWT_EXPIRES_IN, 900);
  t.is(loadConfig({ JWT_EXPIRES_IN: '2h' }).JWT_EXPIRES_IN, 7200);
  t.is(loadConfig({ JWT_EXPIRES_IN: '7d' }).JWT_EXPIRES_IN, 604_800);
  t.is(loadConfig({ BCRYPT_COST: '' }).BCRYPT_COST, 12);
});

test('each bad variable gets its own line', (t) => {
  const error = t.throws(
    () =>
      loadConfig({
        JWT_EXPIRES_IN: 'soon',
        BCRYPT_COST: '3',
        WORKER_POLL_INTERVAL_SECONDS: '0.1',
        DATABASE_URL: 'mysql://x',
        LOG_LEVEL: 'loud',
      }),
    { instanceOf: ConfigError },
  );
  for (const name of ['JWT_EXPIRES_IN', 'BCRYPT_COST', 'WORKER_POLL_INTERVAL_SECONDS', 'DATABASE_URL', 'LOG_LEVEL']) {
    t.regex(error?.message ?? '', new RegExp(`^  ${name}: `, 'm'));
  }
});

test('production requires DATABASE_URL and a JWT_SECRET of 32 characters or more', (t) => {
  const error = t.throws(() => loadConfig({ NODE_ENV: 'production' }), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /DATABASE_URL: is required in production/);
  t.regex(error?.message ?? '', /JWT_SECRET: is required in production/);
  const config = loadConfig({
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://u:p@db:5432/tasks',
    JWT_SECRET: 'x'.repeat(32),
  });
  t.is(config.DATABASE_URL, 'postgres://u:p@db:5432/tasks');
});

test("queries may go through a pooler: DATABASE_DIRECT_URL, or Heroku's DATABASE_CONNECTION_POOL_URL", (t) => {
  const direct = 'postgres://u:p@db:5432/tasks';
  const pooled = 'postgres://u:p@pooler:6432/tasks';
  const alone = loadConfig({ DATABASE_URL: direct });
  t.deepEqual([alone.DATABASE_URL, alone.DATABASE_DIRECT_URL], [direct, direct], 'one URL serves both');
  const both = loadConfig({ DATABASE_URL: pooled, DATABASE_DIRECT_URL: direct });
  t.deepEqual([both.DATABASE_URL, both.DATABASE_DIRECT_URL], [pooled, direct]);
  // Heroku's Connection Pooling attaches DATABASE_CONNECTION_POOL_URL beside the direct DATABASE_URL.
  const heroku = loadConfig({
    NODE_ENV: 'production',
    JWT_SECRET: 'x'.repeat(32),
    DATABASE_URL: direct,
    DATABASE_CONNECTION_POOL_URL: pooled,
    PGSSLMODE: 'no-verify',
  });
  t.deepEqual(
    [heroku.DATABASE_URL, heroku.DATABASE_DIRECT_URL],
    [`${pooled}?sslmode=no-verify`, `${direct}?sslmode=no-verify`],
    'queries through the pooler, sessions direct, both with the TLS mode',
  );
  const error = t.throws(() => loadConfig({ DATABASE_DIRECT_URL: 'mysql://x' }), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /DATABASE_DIRECT_URL/);
});

test("every variable the configuration reads is in docs/deploy.md's configuration table", async (t) => {
  const table = await readFile(path.join(projectDir, 'docs', 'deploy.md'), 'utf8');
  const listed = new Set([...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1]));
  t.deepEqual(
    configNames.filter((name) => !listed.has(name)),
    [],
  );
  t.true(configNames.length >= 35, `${configNames.length} variables`);
});
