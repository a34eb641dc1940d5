/**
 * `npm run bench`: every part in turn (or those named: `npm run bench -- http drain`), each in a process of its own (its progress line and its own table
 * show as it runs), then one table of the figures the speed goals are about, with the goal beside each,
 * written to .artifacts/bench-summary.json as well. BENCH_DATABASE_URL runs them on that server instead of the
 * embedded Postgres.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { projectDir } from '../src/config.ts';
import { hasReport, readReport, writeReport } from './report.ts';

const parts = ['http', 'lateness', 'watch', 'drain', 'deliveries', 'jwt', 'keys', 'schedules'] as const;
// `npm run bench -- drain` runs only the parts named; the summary takes the others from their last run.
// `scale` (ten million tasks, about half an hour) runs only when named, and prints its own tables.
const asked = process.argv.slice(2);
const running = asked.length === 0 ? [...parts] : asked;
for (const part of running) {
  if (![...parts, 'scale'].includes(part)) throw new Error(`no bench part "${part}"`);
  process.stderr.write(`\n== bench/${part}.ts\n`);
  const code = await new Promise<number | null>((resolve) => {
    spawn(process.execPath, [path.join(projectDir, 'bench', `${part}.ts`)], { stdio: 'inherit' }).once('exit', resolve);
  });
  if (code !== 0) throw new Error(`bench/${part}.ts exited with ${code}`);
}
if (running.every((part) => part === 'scale')) process.exit(0); // its tables are printed above
// The summary takes every part's last figures (schedules' are optional): without them, say so, not crash.
const missing: string[] = [];
for (const part of parts) if (part !== 'schedules' && !(await hasReport(part))) missing.push(part);
if (missing.length > 0) {
  console.log(
    `\nNo summary yet: it needs every part's figures, and these have none on this machine: ${missing.join(', ')}.`,
  );
  console.log('`npm run bench` runs them all.');
  process.exit(0);
}

type HttpRow = {
  operation: string;
  concurrency: number;
  apiPerSecond: number;
  pgbenchPerSecond: number | null;
  pgbenchWithoutUserReadPerSecond: number | null;
  peerPerSecond: number;
  apiCpuPer1000: number;
  peerCpuPer1000: number;
};
const http = await readReport<{
  rows: HttpRow[];
  serverVersion: string;
  web: { peakRssMiB: number; peakConnections: number };
}>('http');
type Lateness = { p50: number; p99: number; max: number; early: number };
const lateness = await readReport<
  Lateness & {
    mixed: Lateness & { rescheduled: number; atSupersededTime: number };
    burst: { tasks: number; clients: number; all: Lateness; split: Lateness };
  }
>('lateness');
const watch = await readReport<{ p50: number; p99: number; early: number }>('watch');
const drain = await readReport<{
  oneWorkerPerSecond: number;
  twoWorkersPerSecond: number;
  pgBossAlonePerSecond: number;
  idle: Record<'web' | 'worker' | 'all', { rssMiB: number; connections: number }>;
  workerPeak: { rssMiB: number; connections: number };
}>('drain');
const jwt = await readReport<{ stringSecretPerSecond: number; keyObjectPerSecond: number }>('jwt');
const keys = await readReport<{ rows: { operation: string; rateRatio: number; cpuRatio: number }[] }>('keys');
const deliveries = await readReport<{
  drainWithoutEndpoints: number;
  drainWithEndpoints: number;
  deliveriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  lost: number;
  drainRatioWithBusyNeighbour: number;
  healthyAloneP50Ms: number;
  healthyAloneP99Ms: number;
  healthyBesideP50Ms: number;
  healthyBesideP99Ms: number;
  healthyLost: number;
  createsWithoutEndpoint: number;
  createsWithEndpoint: number;
}>('deliveries');

/** The API's rate at concurrency 16 over pgbench's, with the request's statements or without its user read. */
const ratioToPgbench = (operation: string, ceiling: 'full' | 'bare' = 'full') => {
  const row = http.rows.find((entry) => entry.operation === operation && entry.concurrency === 16);
  const pgbench = ceiling === 'full' ? row?.pgbenchPerSecond : row?.pgbenchWithoutUserReadPerSecond;
  return row && pgbench ? row.apiPerSecond / pgbench : Number.NaN;
};
type ScheduleLateness = {
  occurrences: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  early: number;
};
const schedules = await readReport<{
  every: ScheduleLateness;
  topOfMinute: (ScheduleLateness & { size: number; twice: number; lost: number; p99BoundMs: number | null })[];
}>('schedules').catch(() => null);
const fixed = (value: number, digits = 2) => value.toFixed(digits);
type Line = { figure: string; value: string; goal: string; met: boolean | null };
const row16 = (operation: string) =>
  http.rows.find((entry) => entry.operation === operation && entry.concurrency === 16);
const lines: Line[] = [
  // The goals: against the peer, the same routes in Fastify + pg (issue 18).
  ...(['list', 'create'] as const).flatMap((operation) => {
    const route = operation === 'create' ? 'POST /tasks' : 'GET /tasks';
    const goal = operation === 'create' ? 0.95 : 0.9;
    const row = row16(operation);
    const rate = row ? row.apiPerSecond / row.peerPerSecond : Number.NaN;
    const cpu = row ? row.apiCpuPer1000 / row.peerCpuPer1000 : Number.NaN;
    return [
      {
        figure: `${route} at concurrency 16, API / peer (requests/s)`,
        value: fixed(rate),
        goal: `≥ ${goal}`,
        met: rate >= goal,
      },
      {
        figure: `${route} at concurrency 16, CPU per request, API / peer (${fixed(row?.apiCpuPer1000 ?? Number.NaN, 0)} / ${fixed(row?.peerCpuPer1000 ?? Number.NaN, 0)} ms per 1,000)`,
        value: fixed(cpu),
        goal: '≤ 1.15',
        met: cpu <= 1.15,
      },
    ];
  }),
  // Context: the database's own ceiling for the same statements.
  ...(['create', 'list'] as const).flatMap((operation) => {
    const route = operation === 'create' ? 'POST /tasks' : 'GET /tasks';
    return [
      {
        figure: `${route} at concurrency 16, API / pgbench of the request's statements`,
        value: fixed(ratioToPgbench(operation)),
        goal: '',
        met: null,
      },
      {
        figure: `${route} at concurrency 16, API / pgbench without the user read`,
        value: fixed(ratioToPgbench(operation, 'bare')),
        goal: '',
        met: null,
      },
    ];
  }),
  { figure: 'lateness after due_at, p99 ms', value: fixed(lateness.p99, 0), goal: '≤ 50', met: lateness.p99 <= 50 },
  { figure: 'tasks completed before due_at', value: String(lateness.early), goal: '0', met: lateness.early === 0 },
  {
    figure: `lateness, random due times with ${lateness.mixed.rescheduled} rescheduled, p99 ms`,
    value: fixed(lateness.mixed.p99, 0),
    goal: '≤ 50',
    met: lateness.mixed.p99 <= 50,
  },
  {
    figure: 'of those, completed early / at a superseded due time',
    value: `${lateness.mixed.early} / ${lateness.mixed.atSupersededTime}`,
    goal: '0 / 0',
    met: lateness.mixed.early === 0 && lateness.mixed.atSupersededTime === 0,
  },
  ...(
    [
      ['the all-in-one process', lateness.burst.all],
      ['a web beside a worker process', lateness.burst.split],
    ] as const
  ).map(([shape, burst]) => ({
    figure: `lateness, a burst of ${lateness.burst.tasks} creates ${lateness.burst.clients} at a time to ${shape}, p99 / max ms (early)`,
    value: `${fixed(burst.p99, 0)} / ${fixed(burst.max, 0)} (${burst.early})`,
    goal: '≤ 50 / ≤ 250 (0)',
    met: burst.p99 <= 50 && burst.max <= 250 && burst.early === 0,
  })),
  {
    figure: 'drain, one worker / pg-boss alone',
    value: fixed(drain.oneWorkerPerSecond / drain.pgBossAlonePerSecond),
    goal: '≥ 0.8',
    met: drain.oneWorkerPerSecond / drain.pgBossAlonePerSecond >= 0.8,
  },
  {
    figure: 'drain, two workers / one worker',
    value: fixed(drain.twoWorkersPerSecond / drain.oneWorkerPerSecond),
    goal: 'near 2 (read as ≥ 1.6)',
    met: drain.twoWorkersPerSecond / drain.oneWorkerPerSecond >= 1.6,
  },
  {
    figure: 'all-in-one process idle, resident MiB',
    value: fixed(drain.idle.all.rssMiB, 0),
    goal: '≤ 150',
    met: drain.idle.all.rssMiB <= 150,
  },
  {
    figure: 'web: resident MiB idle / at peak; connections idle / at peak',
    value: `${fixed(drain.idle.web.rssMiB, 0)} / ${fixed(http.web.peakRssMiB, 0)}; ${drain.idle.web.connections} / ${http.web.peakConnections}`,
    goal: '',
    met: null,
  },
  {
    figure: 'worker: resident MiB idle / at peak; connections idle / at peak',
    value: `${fixed(drain.idle.worker.rssMiB, 0)} / ${fixed(drain.workerPeak.rssMiB, 0)}; ${drain.idle.worker.connections} / ${drain.workerPeak.connections}`,
    goal: '',
    met: null,
  },
  {
    figure: 'long-poll answered after completed_at, p50 / p99 ms (before it)',
    value: `${watch.p50} / ${watch.p99} (${watch.early})`,
    goal: '',
    met: null,
  },
  {
    figure: 'webhooks: deliveries/s; completion to receiver p50 / p99 ms; lost',
    value: `${fixed(deliveries.deliveriesPerSecond, 0)}; ${fixed(deliveries.p50Ms, 0)} / ${fixed(deliveries.p99Ms, 0)}; ${deliveries.lost}`,
    goal: 'none lost',
    met: deliveries.lost === 0,
  },
  {
    figure: 'drain with one endpoint per user / without (completions/s)',
    value: fixed(deliveries.drainWithEndpoints / deliveries.drainWithoutEndpoints),
    goal: '',
    met: null,
  },
  {
    figure: 'drain beside a neighbour whose 10 endpoints hang 30 s / without endpoints (completions/s)',
    value: fixed(deliveries.drainRatioWithBusyNeighbour),
    goal: '≥ 0.9',
    met: deliveries.drainRatioWithBusyNeighbour >= 0.9,
  },
  {
    figure: "noisy neighbour: a healthy user's delivery p50 / p99 ms, alone; beside one whose endpoints hang",
    value: `${fixed(deliveries.healthyAloneP50Ms, 0)} / ${fixed(deliveries.healthyAloneP99Ms, 0)}; ${fixed(deliveries.healthyBesideP50Ms, 0)} / ${fixed(deliveries.healthyBesideP99Ms, 0)}`,
    goal: 'beside: p99 < 2000, none lost',
    met: deliveries.healthyBesideP99Ms < 2000 && deliveries.healthyLost === 0,
  },
  {
    figure: 'POST /tasks/s, a user with one endpoint / with none (worker relaying)',
    value: fixed(deliveries.createsWithEndpoint / deliveries.createsWithoutEndpoint),
    goal: '',
    met: null,
  },
  ...keys.rows.map((row) => ({
    figure: `${row.operation === 'list' ? 'GET' : 'POST'} /tasks at concurrency 16 with an API key / with a token: requests/s; CPU per request`,
    value: `${fixed(row.rateRatio)}; ${fixed(row.cpuRatio)}`,
    goal: 'within 5 %',
    met: Math.abs(row.rateRatio - 1) <= 0.05 && Math.abs(row.cpuRatio - 1) <= 0.05,
  })),
  ...(schedules
    ? [
        {
          figure: `schedules: 50 every 2 s for a minute (${schedules.every.occurrences} occurrences), lateness p99 / max ms (early)`,
          value: `${fixed(schedules.every.p99 ?? Number.NaN, 0)} / ${fixed(schedules.every.max ?? Number.NaN, 0)} (${schedules.every.early})`,
          goal: '≤ 50 / ≤ 250 (0)',
          met:
            (schedules.every.p99 ?? Number.POSITIVE_INFINITY) <= 50 &&
            (schedules.every.max ?? Number.POSITIVE_INFINITY) <= 250 &&
            schedules.every.early === 0,
        },
        ...schedules.topOfMinute.map((round) => {
          const bound = round.size <= 100 ? 50 : (round.p99BoundMs ?? Number.NaN);
          return {
            figure: `schedules: ${round.size} firing at the top of the minute, lateness p99 ms (early, twice, lost)`,
            value: `${fixed(round.p99 ?? Number.NaN, 0)} (${round.early}, ${round.twice}, ${round.lost})`,
            goal: `≤ ${fixed(bound, 0)} (0, 0, 0)`,
            met:
              (round.p99 ?? Number.POSITIVE_INFINITY) <= bound &&
              round.early === 0 &&
              round.twice === 0 &&
              round.lost === 0,
          };
        }),
      ]
    : []),
  {
    figure: 'JWT verifications/s, KeyObject / string secret',
    value: fixed(jwt.keyObjectPerSecond / jwt.stringSecretPerSecond),
    goal: '',
    met: null,
  },
];

const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, PostgreSQL ${http.serverVersion} ${process.env.BENCH_DATABASE_URL ? '(BENCH_DATABASE_URL)' : '(embedded)'}`;
console.log(`\nSummary (${machine}):\n`);
console.log('| figure | this run | goal | met |');
console.log('|---|---|---|---|');
for (const line of lines) {
  console.log(
    `| ${line.figure} | ${line.value} | ${line.goal} | ${line.met === null ? '' : line.met ? 'yes' : 'no'} |`,
  );
}
await writeReport('summary', {
  machine,
  at: new Date().toISOString(),
  lines,
  http,
  lateness,
  watch,
  drain,
  deliveries,
  jwt,
});
console.log('\nAll figures: .artifacts/bench-summary.json (and one file per part beside it).');
