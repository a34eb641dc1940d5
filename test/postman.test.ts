import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import newman from 'newman';
import { projectDir } from '../src/config.ts';
import { createTestDatabase } from './helpers/db.ts';
import { listeningUrl, spawnService } from './helpers/process.ts';
import { startReceiver } from './helpers/receiver.ts';
import { TEST_SECRET } from './helpers/service.ts';

const readJson = async (file: string) => JSON.parse(await readFile(path.join(projectDir, 'postman', file), 'utf8'));

/** The service as npm start runs it (with a 2 s delay), and newman over the shipped collection and environment. */
async function runCollection(
  t: { teardown(fn: () => unknown): void },
  env: Record<string, string>,
  envVar: { key: string; value: string }[],
) {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const service = spawnService('all', {
    DATABASE_URL: database.url,
    JWT_SECRET: TEST_SECRET,
    TASK_COMPLETION_DELAY_SECONDS: '2',
    ...env,
  });
  t.teardown(() => service.child.kill('SIGKILL'));
  const baseUrl = await listeningUrl(service);
  const collection = await readJson('task-manager.postman_collection.json');
  const environment = await readJson('task-manager.postman_environment.json');
  const summary: any = await new Promise((resolve, reject) =>
    newman.run(
      { collection, environment, envVar: [{ key: 'baseUrl', value: baseUrl }, ...envVar], reporters: [] },
      (error: Error | null, result: unknown) => (error ? reject(error) : resolve(result)),
    ),
  );
  const failures = summary.run.failures.map(
    (failure: any) => `${failure.source?.name}: ${failure.error?.test ?? ''} ${failure.error?.message}`,
  );
  const ran = new Set<string>(summary.run.executions.map((execution: any) => execution.item.name));
  return { collection, environment, failures, stats: summary.run.stats, ran };
}

test('the collection runs green as shipped: npm start, the shipped environment, nothing else set up', async (t) => {
  const { collection, environment, failures, stats, ran } = await runCollection(t, {}, []);
  t.is(collection.info.schema, 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json');
  t.is(environment.values.find((entry: { key: string }) => entry.key === 'baseUrl')?.value, 'http://localhost:3000');
  t.is(
    environment.values.find((entry: { key: string }) => entry.key === 'webhookUrl')?.value,
    'https://example.com/hooks/tasks',
  );
  t.deepEqual(failures, []);
  t.is(stats.assertions.failed, 0);
  t.true(stats.assertions.total >= 30, `${stats.assertions.total} assertions`);
  // The webhook folder says what it needs, and without a receiver it is skipped: nothing was sent to example.com.
  t.false(ran.has('1. Register a webhook endpoint (saves its id)'));
  t.true(ran.has('1. Make an API key (saves it: shown only here)'));
  t.true(ran.has('8. Delete the schedule'));
  t.log(`${ran.size} requests ran, ${stats.assertions.total} assertions`);
});

test('with a receiver, the webhook folder proves the delivery too', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const { failures, stats, ran } = await runCollection(
    t,
    { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' }, // the receiver is on 127.0.0.1
    [{ key: 'webhookUrl', value: receiver.url() }],
  );
  t.deepEqual(failures, []);
  t.true(receiver.received.length >= 1, 'the webhook was delivered');
  t.true(ran.has("3. The endpoint's deliveries: the event was attempted"));
  t.is(ran.size, 39, 'every request of every folder ran');
  t.is(stats.requests.failed, 0);
  t.is(stats.assertions.failed, 0);
  t.log(`${stats.requests.total} requests (with the deliveries' re-asks), ${stats.assertions.total} assertions`);
});
