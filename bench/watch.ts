/**
 * How soon a long-poll (`GET /tasks/:id` with `Prefer: wait=30`) answers after its task's completion
 * commits: BENCH_WATCH_TASKS (default 200) tasks due 2 s after creation, created over 2 s, each watched
 * by one long-poll from the moment it exists. The figure is the answer's arrival minus `completed_at`.
 * The whole service runs in this process (HTTP API, worker, events listener), on the embedded Postgres
 * or BENCH_DATABASE_URL's server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { benchDatabase } from './database.ts';
import { writeReport } from './report.ts';
import { startBenchService } from './service.ts';

const config = loadConfig();
const total = Number(process.env.BENCH_WATCH_TASKS ?? 200);
const log = createLogger({ LOG_LEVEL: 'warn' });
const database = await benchDatabase('task_manager_bench_watch', log);
const service = await startBenchService(database.url, config, log, { delaySeconds: 2 });
const base = service.base;
const auth = { authorization: service.authorization };

const afterCommitMs: number[] = [];
const watches: Promise<void>[] = [];
for (let i = 0; i < total; i++) {
  const created = await fetch(`${base}/tasks`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ title: `watched ${i}` }),
  });
  const task = (await created.json()) as { id: number };
  watches.push(
    fetch(`${base}/tasks/${task.id}`, { headers: { ...auth, prefer: 'wait=30' } }).then(async (response) => {
      const arrived = Date.now();
      const body = (await response.json()) as { status: string; completed_at: string };
      if (body.status !== 'completed') throw new Error(`task ${task.id} answered ${body.status}`);
      afterCommitMs.push(arrived - Date.parse(body.completed_at));
    }),
  );
  await sleep(2_000 / total);
}
await Promise.all(watches);

const sorted = [...afterCommitMs].sort((a, b) => a - b);
const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
const figures = { longPolls: total, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted.at(-1) ?? Number.NaN };
const early = sorted.filter((ms) => ms < 0).length;
console.log(
  `\n${total} long-polls answered after the completion's commit (arrival - completed_at): p50 ${figures.p50} ms, ` +
    `p95 ${figures.p95} ms, p99 ${figures.p99} ms, max ${figures.max} ms, before completed_at: ${early}`,
);
await writeReport('watch', { ...figures, early });

await service.stop();
await database.stop();
