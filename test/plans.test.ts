/**
 * The list queries and the request path's other reads, as the domain writes them, planned by Postgres on
 * 1,000,000 tasks of 10,000 users (95 % completed and due in the past, the rest pending and due within a
 * day) and 200,000 task events: each walks an index in the order asked, with no sort and no scan of a table. Plans depend on the data, never on timing. The tests
 * run one at a time: they share one connection.
 */
import test from 'ava';
import pg from 'pg';
import type { CommonQueryMethods, QuerySqlToken } from 'slonik';
import { unparkStatement } from '../src/db/parking.ts';
import { COMPLETE_TASK } from '../src/db/queues.ts';
import { readEvents } from '../src/domain/tasks/events.ts';
import type { ListFilter } from '../src/domain/tasks/queries.ts';
import { deleteTaskRow, findOrphanedTasks, findTask, listTasks, nextDueJob } from '../src/domain/tasks/queries.ts';
import { findActor } from '../src/domain/users/queries.ts';
import type { Actor } from '../src/domain/users/user.ts';
import { relayStep } from '../src/domain/webhooks/outbox.ts';
import { PRODUCTION_TIMING } from '../src/timing.ts';
import { createTestDatabase } from './helpers/db.ts';

const TASKS = 1_000_000;
const USERS = 10_000;

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let client: pg.Client;
test.before(async (t) => {
  t.timeout(240_000, 'seeding a million tasks'); // about 25 s alone on this 2-core machine
  database = await createTestDatabase();
  client = new pg.Client(database.url);
  await client.connect();
  // The seed is one long statement at a time: past the role's 30 s bound on a slow machine.
  await client.query('set statement_timeout = 0');
  await client.query(
    `insert into users (email, password_hash) select 'u' || g || '@example.com', 'x' from generate_series(1, ${USERS}) g`,
  );
  // Set-based, without the event triggers (a million event rows would only slow the seed), and with the
  // indexes built once afterwards rather than row by row: the same indexes, in a third of the time.
  const { rows: indexes } = await client.query<{ name: string; definition: string }>(
    `select indexname as name, indexdef as definition from pg_indexes
     where tablename = 'tasks' and indexname <> 'tasks_pkey'`,
  );
  for (const { name } of indexes) await client.query(`drop index ${name}`);
  await client.query('alter table tasks disable trigger user');
  await client.query(`
    insert into tasks (user_id, title, status, due_at, completed_at, created_at, updated_at, job_id)
    select 1 + g % ${USERS}, 'task ' || g, s.status, s.due_at,
           case when s.status = 'completed' then s.due_at end, s.due_at - interval '2 minutes', s.due_at,
           gen_random_uuid()
    from generate_series(1, ${TASKS}) g,
         lateral (select case when g % 20 = 0 then 'pending' else 'completed' end as status) k,
         lateral (select date_trunc('milliseconds', case when k.status = 'pending'
                    then now() + (g % 86400) * interval '1 second'
                    else now() - interval '30 days' + g * interval '2.5 seconds' end) as due_at,
                  k.status) s`);
  await client.query('alter table tasks enable trigger user');
  for (const { definition } of indexes) await client.query(definition);
  // A day of task events at this size: 200,000 (the seed above wrote none).
  await client.query(
    `insert into task_events (user_id, task_id, type) select 1 + g % ${USERS}, g, 'created' from generate_series(1, 200000) g`,
  );
  // The pending tasks' completion jobs, waiting in pg-boss's table as the API writes them.
  await client.query(
    `insert into pgboss.job (name, id, state, start_after, data)
     select $1, job_id, 'created', due_at, json_build_object('taskId', id) from tasks where status = 'pending'`,
    [COMPLETE_TASK],
  );
  await client.query('analyze pgboss.job');
  await client.query('vacuum analyze tasks');
  await client.query('analyze users');
  await client.query('analyze task_events');
});
test.after.always(async () => {
  await client?.end();
  await database?.drop();
});

/** The statement a domain query function sends, taken from its query token (nothing is run here). */
function statementOf(send: (db: CommonQueryMethods) => Promise<unknown>): QuerySqlToken {
  let token: QuerySqlToken | undefined;
  const capture = new Proxy(
    {},
    {
      get: () => async (query: QuerySqlToken) => {
        token ??= query;
        return { rows: [] };
      },
    },
  ) as CommonQueryMethods;
  void send(capture).catch(() => {});
  if (!token) throw new Error('the function sent nothing');
  return token;
}

type PlanNode = { 'Node Type': string; 'Index Name'?: string; 'Relation Name'?: string; Plans?: PlanNode[] };
const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];

async function plan(token: QuerySqlToken): Promise<PlanNode[]> {
  const { sql, values } = token;
  // Slonik sends `$slonik_N` as `$N` (routines/executeQuery); so does this.
  const text = sql.replaceAll('$slonik_', '$');
  const { rows } = await client.query(`explain (format json) ${text}`, values as unknown[]);
  return nodesOf(rows[0]['QUERY PLAN'][0].Plan);
}

const user: Actor = { id: 4242, role: 'user' };
const admin: Actor = { id: 1, role: 'admin' };
const dueCursor = { id: 500_000, dueAt: new Date(Date.now() - 10 * 86_400_000).toISOString() };

const cases: [string, Actor, ListFilter, string][] = [
  ['a user, soonest due first', user, { sort: 'due', limit: 21 }, 'tasks_user_id_due_at_id'],
  [
    'a user, soonest due first, next page',
    user,
    { sort: 'due', limit: 21, after: dueCursor },
    'tasks_user_id_due_at_id',
  ],
  [
    "a user's pending tasks, soonest due first",
    user,
    { sort: 'due', status: 'pending', limit: 21 },
    'tasks_pending_user_id_due_at_id',
  ],
  ["an admin's list of everyone, soonest due first", admin, { sort: 'due', limit: 21 }, 'tasks_due_at_id'],
  [
    "an admin's list of everyone, soonest due first, next page",
    admin,
    { sort: 'due', limit: 21, after: dueCursor },
    'tasks_due_at_id',
  ],
  [
    "an admin's list of everyone's pending tasks, soonest due first",
    admin,
    { sort: 'due', status: 'pending', limit: 21 },
    'tasks_pending_due_at_id',
  ],
  [
    "an admin's list of one user, soonest due first",
    admin,
    { sort: 'due', userId: 4242, limit: 21 },
    'tasks_user_id_due_at_id',
  ],
  ['a user, newest first', user, { sort: 'created', limit: 21 }, 'tasks_user_id_id'],
  ["an admin's list of everyone, newest first", admin, { sort: 'created', limit: 21 }, 'tasks_pkey'],
];

for (const [title, actor, filter, index] of cases) {
  test.serial(
    `on ${TASKS.toLocaleString('en')} tasks: ${title} walks ${index}, with no sort and no table scan`,
    async (t) => {
      const nodes = await plan(statementOf((db) => listTasks(db, actor, filter)));
      const types = nodes.map((node) => node['Node Type']);
      t.log(
        nodes.map((node) => `${node['Node Type']}${node['Index Name'] ? ` on ${node['Index Name']}` : ''}`).join(' > '),
      );
      t.false(types.includes('Sort'), 'no sort');
      t.false(types.includes('Seq Scan'), 'no scan of the table');
      t.false(types.includes('Bitmap Heap Scan'), 'no bitmap scan, which would need a sort');
      t.true(
        nodes.some((node) => node['Index Name'] === index),
        `walks ${index}`,
      );
    },
  );
}

// The other statements of the request path, on the same tables (task events seeded in `before`). Each is
// a look-up of one row, or of one user's few rows, so either of two indexes serves it: which one the planner
// takes depends on the data. A user's events since a cursor may be read by a bitmap scan of that user's
// index and sorted: at most a day of one user's events, a few rows here.
const fromStart = { tx: 0n, id: 0 };
const byTask = ['tasks_pkey', 'tasks_user_id_id'];
const lookups: [string, QuerySqlToken, string[], 'sort allowed'?][] = [
  ['the user read of every authenticated request', statementOf((db) => findActor(db, 4242)), ['users_pkey']],
  ["a user's GET /tasks/:id", statementOf((db) => findTask(db, user, 500_000)), byTask],
  ["an admin's GET /tasks/:id", statementOf((db) => findTask(db, admin, 500_000)), byTask],
  ["PATCH and DELETE's row lock", statementOf((db) => findTask(db, user, 500_000, { forUpdate: true })), byTask],
  ['the task row deletion', statementOf((db) => deleteTaskRow(db, 500_000)), byTask],
  [
    "a user's event stream, from a cursor",
    statementOf((db) => readEvents(db, fromStart, { userId: 4242 }, 100)),
    ['task_events_user'],
    'sort allowed',
  ],
  [
    "an admin's event stream, from a cursor",
    statementOf((db) => readEvents(db, fromStart, {}, 100)),
    ['task_events_pkey'],
  ],
];
for (const [title, token, indexes, sorting] of lookups) {
  test.serial(
    `on ${TASKS.toLocaleString('en')} tasks: ${title} uses ${indexes.join(' or ')}, with no table scan`,
    async (t) => {
      const nodes = await plan(token);
      const types = nodes.map((node) => node['Node Type']);
      t.log(
        nodes.map((node) => `${node['Node Type']}${node['Index Name'] ? ` on ${node['Index Name']}` : ''}`).join(' > '),
      );
      t.false(types.includes('Seq Scan'), 'no scan of the table');
      if (!sorting) t.false(types.includes('Sort'), 'no sort');
      t.true(
        nodes.some((node) => indexes.includes(node['Index Name'] ?? '')),
        `uses ${indexes.join(' or ')}`,
      );
    },
  );
}

// The worker's statements (run on pg-boss's pool), on the same data: 50,000 pending tasks with their jobs
// waiting. Each comment beside them records a regression of seconds at this size; none may scan the tasks,
// their events or pg-boss's jobs.
const BIG = new Set(['tasks', 'task_events', 'job', 'job_common']);
const workerStatements: [string, QuerySqlToken][] = [
  ["the wake timer's next due time", statementOf((db) => nextDueJob(db))],
  ['the unparking of jobs coming due', unparkStatement(PRODUCTION_TIMING.parkBeyondSeconds)],
  ["the reconciliation's scan for tasks that lost their job", statementOf((db) => findOrphanedTasks(db, 500))],
  ['the webhook relay step', relayStep(500)],
];
for (const [title, token] of workerStatements) {
  test.serial(`on ${TASKS.toLocaleString('en')} tasks: ${title} scans none of the big tables`, async (t) => {
    const nodes = await plan(token);
    t.log(
      nodes
        .map(
          (node) =>
            `${node['Node Type']}${node['Index Name'] ? ` on ${node['Index Name']}` : node['Relation Name'] ? ` of ${node['Relation Name']}` : ''}`,
        )
        .join(' > '),
    );
    const scans = nodes.filter((node) => node['Node Type'] === 'Seq Scan' && BIG.has(node['Relation Name'] ?? ''));
    t.deepEqual(
      scans.map((node) => node['Relation Name']),
      [],
      'no scan of a big table',
    );
    t.true(
      nodes.some((node) => node['Index Name']),
      'an index is walked',
    );
  });
}
