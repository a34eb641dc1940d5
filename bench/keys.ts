/**
 * An API key against a login token: `GET /tasks` (a user with 1,000 tasks, pages of 20) and `POST /tasks`
 * at concurrency 16, through a web process started as the Procfile starts it, once with the user's token
 * and once with a key of the same user (`tasks:read`, `tasks:write`), rounds interleaved (BENCH_ROUNDS,
 * default 3) after BENCH_WARMUP_SECONDS (default 5) of each unmeasured: requests/s and the web process's
 * CPU ms per 1,000 requests, medians, and key / token. Goal: within 5 %. Writes .artifacts/bench-keys.json.
 */
import autocannon from 'autocannon';
import { signToken } from '../src/domain/users/tokens.ts';
import { createLogger } from '../src/log.ts';
import { benchDatabase } from './database.ts';
import { median, progress, writeReport } from './report.ts';
import { BENCH_JWT_SECRET, cpuMs, startRole } from './roles.ts';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
const warmUpSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
const log = createLogger({ LOG_LEVEL: 'warn' });
const database = await benchDatabase('task_manager_bench_keys', log);
const web = await startRole('web', database.url, 'listening on', { RATE_LIMIT_AUTH_PER_MINUTE: '1000' });
const base = `http://127.0.0.1:${web.port}`;

const registered = await fetch(`${base}/register`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ email: 'keys@example.com', password: 'password123' }),
});
const { id } = (await registered.json()) as { id: number };
const token = `Bearer ${signToken({ id, role: 'user' }, { secret: BENCH_JWT_SECRET, expiresInSeconds: 3600 })}`;
const made = await fetch(`${base}/me/api-keys`, {
  method: 'POST',
  headers: { authorization: token, 'content-type': 'application/json' },
  body: JSON.stringify({ name: 'bench', scopes: ['tasks:read', 'tasks:write'] }),
});
const key = `Bearer ${((await made.json()) as { key: string }).key}`;
for (let i = 0; i < 1_000; i += 50) {
  await Promise.all(
    Array.from({ length: 50 }, () =>
      fetch(`${base}/tasks`, {
        method: 'POST',
        headers: { authorization: token, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'seed', delay_seconds: 86_400 }),
      }),
    ),
  );
}

/** One load: requests/s and the web process's CPU ms per 1,000 requests. */
async function load(method: 'GET' | 'POST', authorization: string, duration = seconds) {
  const before = await cpuMs(web.child.pid ?? 0);
  const result = await autocannon({
    url: method === 'GET' ? `${base}/tasks?limit=20` : `${base}/tasks`,
    method,
    connections: 16,
    duration,
    headers: { authorization, 'content-type': 'application/json' },
    ...(method === 'POST' && { body: JSON.stringify({ title: 'bench', delay_seconds: 86_400 }) }),
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${method} with ${authorization.slice(7, 13)}: errors`);
  const cpu = (await cpuMs(web.child.pid ?? 0)) - before;
  return { rps: result.requests.average, cpuPer1000: (cpu / Math.max(1, result.requests.total)) * 1000 };
}

const operations = [
  ['list', 'GET'],
  ['create', 'POST'],
] as const;
for (const [name, method] of operations) {
  progress(`warm-up: ${name}`);
  for (const authorization of [token, key]) await load(method, authorization, warmUpSeconds);
}
const samples: Record<string, { token: Awaited<ReturnType<typeof load>>[]; key: Awaited<ReturnType<typeof load>>[] }> =
  {};
for (let round = 1; round <= rounds; round++) {
  for (const [name, method] of operations) {
    progress(`round ${round}/${rounds}: ${name}`);
    samples[name] ??= { token: [], key: [] };
    // Alternate which goes first, so neither always meets the machine's warmer or cooler moment.
    const order = round % 2 === 0 ? (['key', 'token'] as const) : (['token', 'key'] as const);
    for (const side of order) samples[name][side].push(await load(method, side === 'key' ? key : token));
  }
}
progress('');
await web.stop();
await database.stop();

const rows = operations.map(([name]) => {
  const sample = samples[name] ?? { token: [], key: [] };
  const of = (side: 'token' | 'key', field: 'rps' | 'cpuPer1000') => median(sample[side].map((s) => s[field]));
  return {
    operation: name,
    tokenPerSecond: of('token', 'rps'),
    keyPerSecond: of('key', 'rps'),
    tokenCpuPer1000: of('token', 'cpuPer1000'),
    keyCpuPer1000: of('key', 'cpuPer1000'),
    rateRatio: median(sample.key.map((s, i) => s.rps / (sample.token[i]?.rps ?? Number.NaN))),
    cpuRatio: median(sample.key.map((s, i) => s.cpuPer1000 / (sample.token[i]?.cpuPer1000 ?? Number.NaN))),
  };
});
console.log(`
An API key against a login token, the same user, concurrency 16 (${rounds} interleaved rounds of ${seconds} s, medians)

| operation | token req/s | key req/s | key / token | token CPU ms / 1k | key CPU ms / 1k | key / token (goal: within 5 %) |
|---|---|---|---|---|---|---|
${rows
  .map(
    (row) =>
      `| ${row.operation} | ${row.tokenPerSecond.toFixed(0)} | ${row.keyPerSecond.toFixed(0)} | ${row.rateRatio.toFixed(2)} | ` +
      `${row.tokenCpuPer1000.toFixed(0)} | ${row.keyCpuPer1000.toFixed(0)} | ${row.cpuRatio.toFixed(2)} |`,
  )
  .join('\n')}
`);
await writeReport('keys', { rows });
