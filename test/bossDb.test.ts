import test from 'ava';
import { sql } from 'slonik';
import { z } from 'zod';
import { bossDb } from '../src/db/bossDb.ts';
import { COMPLETE_TASK } from '../src/db/queues.ts';
import { query } from './helpers/db.ts';
import { client, signUp, startService, type TestService } from './helpers/service.ts';

let service: TestService;
let userId: number;
let token: string;
test.before(async () => {
  service = await startService();
  ({
    user: { id: userId },
    token,
  } = await signUp(service.api));
});
test.after.always(() => service?.stop());

const counts = async () =>
  (
    await query<{ tasks: number; jobs: number }>(
      service.databaseUrl,
      `select (select count(*)::int from tasks) tasks, (select count(*)::int from pgboss.job) jobs`,
    )
  )[0];

/** One slonik transaction: a task row, then its pg-boss job through the executeSql adapter. */
const writeBoth = (fail: boolean) =>
  service.db.transaction(async (tx) => {
    const jobId = crypto.randomUUID();
    await tx.query(sql.type(z.object({}))`
      insert into tasks (user_id, title, job_id, due_at) values (${userId}, 'adapter', ${jobId}, now())`);
    await service.boss.send(COMPLETE_TASK, { taskId: 0 }, { id: jobId, db: bossDb(tx) });
    if (fail) throw new Error('failure after the job was sent');
    return jobId;
  });

test.serial('adapter: a rollback after the job is sent leaves neither the task nor the job', async (t) => {
  const before = await counts();
  await t.throwsAsync(writeBoth(true), { message: 'failure after the job was sent' });
  t.deepEqual(await counts(), before);
});

test.serial('adapter: a commit keeps both rows', async (t) => {
  const before = await counts();
  const jobId = await writeBoth(false);
  t.deepEqual(await counts(), { tasks: (before?.tasks ?? 0) + 1, jobs: (before?.jobs ?? 0) + 1 });
  const [job] = await query<{ id: string }>(service.databaseUrl, 'select id from pgboss.job where id = $1', [jobId]);
  t.is(job?.id, jobId);
});

test.serial('POST /tasks: a failure at commit, after both rows were written, leaves neither', async (t) => {
  // A deferred trigger fails the transaction at COMMIT, when the task and its job are both written.
  await query(
    service.databaseUrl,
    `create function fail_commit() returns trigger language plpgsql as $$
       begin raise exception 'injected failure at commit'; end $$;
     create constraint trigger fail_commit after insert on pgboss.job
       deferrable initially deferred for each row execute function fail_commit();`,
  );
  t.teardown(() => query(service.databaseUrl, 'drop trigger fail_commit on pgboss.job; drop function fail_commit();'));
  const before = await counts();
  const reply = await client(service.baseUrl, { allowServerErrors: true }).post('/tasks', { title: 'never' }, token);
  t.is(reply.status, 500);
  t.deepEqual(reply.body, { error: { code: 'internal', message: 'internal error' } });
  t.deepEqual(await counts(), before);
});

test.serial(
  'adapter: rows come back as node-postgres gives them to pg-boss (timestamps as Dates, int8 as strings)',
  async (t) => {
    const at = new Date('2026-11-24T10:00:00.123Z');
    const { rows } = await bossDb(service.db).executeSql(
      'select $1::timestamptz as at, $1::timestamp as local, 9007199254740993::int8 as big, 7::int4 as small, null::timestamptz as never',
      [at],
    );
    const [row] = rows as { at: unknown; local: unknown; big: unknown; small: unknown; never: unknown }[];
    if (!(row?.at instanceof Date)) return t.fail(`a ${typeof row?.at}, not a Date`);
    t.is(row.at.toISOString(), at.toISOString());
    t.true(row?.local instanceof Date);
    t.is(row?.big, '9007199254740993', 'int8 exactly, as a string');
    t.is(row?.small, 7);
    t.is(row?.never, null);
    // What pg-boss's instance registry does in a web process: read a timestamp, send it back.
    const { rows: again } = await bossDb(service.db).executeSql('select $1::timestamptz as at', [row?.at]);
    t.is((again[0] as { at: Date }).at.toISOString(), at.toISOString());
  },
);
