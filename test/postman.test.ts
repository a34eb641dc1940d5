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

test('newman runs the Postman collection green against the service, as npm start runs it, with a 2 s delay', async (t) => {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const service = spawnService('all', {
    DATABASE_URL: database.url,
    JWT_SECRET: TEST_SECRET,
    TASK_COMPLETION_DELAY_SECONDS: '2',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', // the receiver below is on 127.0.0.1
  });
  t.teardown(() => service.child.kill('SIGKILL'));
  const baseUrl = await listeningUrl(service);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());

  const collection = await readJson('task-manager.postman_collection.json');
  t.is(collection.info.schema, 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json');
  const environment = await readJson('task-manager.postman_environment.json');
  t.is(environment.values.find((entry: { key: string }) => entry.key === 'baseUrl')?.value, 'http://localhost:3000');

  const summary: any = await new Promise((resolve, reject) =>
    newman.run(
      {
        collection,
        environment,
        envVar: [
          { key: 'baseUrl', value: baseUrl },
          { key: 'webhookUrl', value: receiver.url() },
        ],
        reporters: [],
      },
      (error: Error | null, result: unknown) => (error ? reject(error) : resolve(result)),
    ),
  );
  const failures = summary.run.failures.map(
    (failure: any) => `${failure.source?.name}: ${failure.error?.test ?? ''} ${failure.error?.message}`,
  );
  t.deepEqual(failures, []);
  t.true(receiver.received.length >= 1, 'the webhook was delivered');
  const { requests, assertions } = summary.run.stats;
  t.log(`${requests.total} requests, ${assertions.total} assertions`);
  t.is(requests.total, 31); // every request of every folder ran
  t.is(requests.failed, 0);
  t.true(assertions.total >= 20);
  t.is(assertions.failed, 0);
});
