/**
 * A CPU profile of a web process under load (`node bench/profile.ts [list|create] [seconds] [peer]`), or of
 * the Fastify + pg peer with `peer` (bench/peer.ts), to compare where each spends its time: the process
 * runs as the Procfile starts it, with `--cpu-prof`; after the load it stops, and the profile's self time
 * is printed by package (or source file) and by function. The .cpuprofile stays in .artifacts/profiles
 * (open it in Chrome's DevTools). PROFILE_WITH_KEY=1 sends an API key instead of a token. Not part of
 * `npm run bench`: a tool for finding where the time goes.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { projectDir } from '../src/config.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { createLogger } from '../src/log.ts';
import { benchDatabase } from './database.ts';
import { BENCH_JWT_SECRET, startRole } from './roles.ts';

const operation = process.argv[2] === 'create' ? 'create' : 'list';
const seconds = Number(process.argv[3] ?? 10);
const side = process.argv[4] === 'peer' ? 'peer' : 'web';
const dir = path.join(projectDir, '.artifacts', 'profiles');
const database = await benchDatabase('task_manager_bench_profile', createLogger({ LOG_LEVEL: 'warn' }));
const web = await startRole(side, database.url, 'listening on', {
  NODE_OPTIONS: `${process.env.PROFILE_NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${dir} --cpu-prof-name=${side}-${operation}-${Date.now()}.cpuprofile`,
});
const base = `http://127.0.0.1:${web.port}`;
// The peer has no /register: its account is written straight into its database.
async function account(): Promise<number> {
  if (side === 'web') {
    const registered = await fetch(`${base}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'profile@example.com', password: 'password123' }),
    });
    return ((await registered.json()) as { id: number }).id;
  }
  const client = new pg.Client(database.url);
  await client.connect();
  const { rows } = await client.query<{ id: string }>(
    `insert into users (email, password_hash) values ('profile@example.com', 'x') returning id`,
  );
  await client.end();
  return Number(rows[0]?.id);
}
const id = await account();
const token = `Bearer ${signToken({ id, role: 'user' }, { secret: BENCH_JWT_SECRET, expiresInSeconds: 3600 })}`;
// PROFILE_WITH_KEY=1: the load sends an API key of the same user instead of the token.
const authorization =
  side === 'web' && process.env.PROFILE_WITH_KEY === '1'
    ? `Bearer ${
        (
          (await (
            await fetch(`${base}/me/api-keys`, {
              method: 'POST',
              headers: { authorization: token, 'content-type': 'application/json' },
              body: JSON.stringify({ name: 'profile', scopes: ['tasks:read', 'tasks:write'] }),
            })
          ).json()) as { key: string }
        ).key
      }`
    : token;
const post = { method: 'POST', headers: { authorization, 'content-type': 'application/json' } } as const;
for (let i = 0; i < 1_000; i += 50) {
  await Promise.all(Array.from({ length: 50 }, () => fetch(`${base}/tasks`, { ...post, body: '{"title":"seed"}' })));
}
// Fresh statistics, as after autovacuum: otherwise the planner may take a worse plan for one side's list.
const admin = new pg.Client(database.url);
await admin.connect();
await admin.query('vacuum analyze tasks');
await admin.end();
const result = await autocannon({
  url: operation === 'list' ? `${base}/tasks?limit=20` : `${base}/tasks`,
  method: operation === 'list' ? 'GET' : 'POST',
  connections: 16,
  duration: seconds,
  headers: { authorization, 'content-type': 'application/json' },
  ...(operation === 'create' && { body: '{"title":"bench"}' }),
});
console.log(`${operation}: ${result.requests.average} requests/s, ${result.non2xx} non-2xx`);
await web.stop();
await database.stop();

const newest =
  (await readdir(dir))
    .filter((name) => name.startsWith(`${side}-${operation}`))
    .sort()
    .at(-1) ?? '';
const profile = JSON.parse(await readFile(path.join(dir, newest), 'utf8')) as {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<number, number>();
for (const [i, sample] of profile.samples.entries()) {
  self.set(sample, (self.get(sample) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const where = (url: string, name: string) => {
  if (!url) return `(${name || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  return url.includes('/src/') ? `src/${url.split('/src/')[1]}` : url;
};
const byPlace = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
for (const [nodeId, micros] of self) {
  const { functionName, url } = byId.get(nodeId)?.callFrame ?? { functionName: '', url: '' };
  const place = where(url, functionName);
  byPlace.set(place, (byPlace.get(place) ?? 0) + micros);
  const fn = `${functionName || '(anonymous)'} (${place})`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + micros);
  total += micros;
}
const top = (map: Map<string, number>, count: number) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, micros]) => `| ${name} | ${((100 * micros) / total).toFixed(1)} % |`)
    .join('\n');
console.log(`\n${path.join(dir, newest)}: ${(total / 1000).toFixed(0)} ms of main-thread time sampled`);
console.log(`\n| self time by package or file | share |\n|---|---|\n${top(byPlace, 20)}`);
console.log(`\n| self time by function | share |\n|---|---|\n${top(byFunction, 25)}`);
