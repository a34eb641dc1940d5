/**
 * The DST rule through real completions, in the four zones of schedules.test.ts's /upcoming check: one
 * service process, with an embedded Postgres of its own, runs on a clock that libfaketime (Debian's
 * `faketime`) moves to just before each transition; there a daily and an hourly six-field cron fire at two
 * seconds of a local time that does not exist or happens twice, the worker completes each occurrence, and
 * writes the next. Node and Postgres read the same moved clock, so due times, pg-boss's start_after and the
 * wake timer agree as they do on a real day of change. The embedded run only: the clock is the embedded
 * server's (the external server's clock cannot be moved).
 */
import { existsSync, readdirSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { embeddedDataFolder, eventually, listeningUrl, spawnService } from './helpers/process.ts';
import { freePort } from './helpers/proxy.ts';
import { client, signUp } from './helpers/service.ts';

/** libfaketime's thread-safe build, wherever Debian put it for this machine's architecture. */
const LIBFAKETIME = readdirSync('/usr/lib', { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => path.join('/usr/lib', entry.name, 'faketime/libfaketimeMT.so.1'))
  .find((file) => existsSync(file));

type Fires = { cron: string; next: string };
type Transition = {
  zone: string;
  /** The first of the two fire times (the second is 3 s later): a local time in the gap, or a repeated one. */
  at: string;
  daily: Fires;
  hourly: Fires;
};

// In time order: the clock only moves forward. Each cron fires at seconds 0 and 3 of one local minute.
const TRANSITIONS: Transition[] = [
  {
    zone: 'America/New_York', // 2027-03-14 02:00 → 03:00: 02:30 fires at 03:30 EDT
    at: '2027-03-14T07:30:00Z',
    daily: { cron: '0,3 30 2 * * *', next: '2027-03-15T06:30:00.000Z' }, // 02:30 EDT
    hourly: { cron: '0,3 30 * * * *', next: '2027-03-14T08:30:00.000Z' }, // 04:30 EDT: 03:30 not twice
  },
  {
    zone: 'Europe/Berlin', // 2027-03-28 02:00 → 03:00
    at: '2027-03-28T01:30:00Z',
    daily: { cron: '0,3 30 2 * * *', next: '2027-03-29T00:30:00.000Z' },
    hourly: { cron: '0,3 30 * * * *', next: '2027-03-28T02:30:00.000Z' },
  },
  {
    zone: 'Australia/Lord_Howe', // 2027-04-04 02:00 → 01:30 (+11:00 → +10:30): 01:45 happens twice
    at: '2027-04-03T14:45:00Z',
    daily: { cron: '0,3 45 1 * * *', next: '2027-04-04T15:15:00.000Z' }, // 01:45+10:30 the next day
    hourly: { cron: '0,3 45 * * * *', next: '2027-04-03T16:15:00.000Z' }, // 02:45+10:30: not the second 01:45
  },
  {
    zone: 'Australia/Sydney', // 2027-04-04 03:00 → 02:00: 02:30 happens twice
    at: '2027-04-03T15:30:00Z',
    daily: { cron: '0,3 30 2 * * *', next: '2027-04-04T16:30:00.000Z' },
    hourly: { cron: '0,3 30 * * * *', next: '2027-04-03T17:30:00.000Z' },
  },
  {
    zone: 'Australia/Lord_Howe', // 2027-10-03 02:00 → 02:30 (+10:30 → +11:00): 02:15 fires at 02:45
    at: '2027-10-02T15:45:00Z',
    daily: { cron: '0,3 15 2 * * *', next: '2027-10-03T15:15:00.000Z' },
    hourly: { cron: '0,3 15 * * * *', next: '2027-10-02T16:15:00.000Z' },
  },
  {
    zone: 'Australia/Sydney', // 2027-10-03 02:00 → 03:00
    at: '2027-10-02T16:30:00Z',
    daily: { cron: '0,3 30 2 * * *', next: '2027-10-03T15:30:00.000Z' },
    hourly: { cron: '0,3 30 * * * *', next: '2027-10-02T17:30:00.000Z' },
  },
  {
    zone: 'Europe/Berlin', // 2027-10-31 03:00 → 02:00
    at: '2027-10-31T00:30:00Z',
    daily: { cron: '0,3 30 2 * * *', next: '2027-11-01T01:30:00.000Z' },
    hourly: { cron: '0,3 30 * * * *', next: '2027-10-31T02:30:00.000Z' },
  },
  {
    zone: 'America/New_York', // 2027-11-07 02:00 → 01:00
    at: '2027-11-07T05:30:00Z',
    daily: { cron: '0,3 30 1 * * *', next: '2027-11-08T06:30:00.000Z' },
    hourly: { cron: '0,3 30 * * * *', next: '2027-11-07T07:30:00.000Z' },
  },
];

type TaskJson = { id: number; status: string; due_at: string; completed_at: string | null };

const external = Boolean(process.env.TEST_DATABASE_URL);
const run = LIBFAKETIME && !external ? test : test.skip;
if (!LIBFAKETIME) console.log("  daylightSaving: Debian's faketime is not installed; the DST completions are skipped");
else if (external) console.log("  daylightSaving: runs in the embedded run only (it moves its own server's clock)");

run(
  'the DST rule holds through real completions: gap times fire once, past the gap; repeated ones once, at the first',
  async (t) => {
    t.timeout(240_000);
    const dataDir = await embeddedDataFolder('task-manager-dst-');
    t.teardown(() => rm(dataDir, { recursive: true, force: true }));
    const clockFile = path.join(dataDir, 'clock');

    /** Moves the clock of the service (Node and its Postgres) to instant `ms`. */
    const setClock = async (ms: number) => {
      const offsetSeconds = Math.round((ms - Date.now()) / 1000);
      await writeFile(`${clockFile}.next`, `${offsetSeconds >= 0 ? '+' : ''}${offsetSeconds}\n`);
      await rename(`${clockFile}.next`, clockFile); // a reader sees the old offset or the new, never an empty file
    };
    await setClock(Date.now());

    const service = spawnService('all', {
      DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(await freePort()),
      SCHEDULE_MIN_INTERVAL_SECONDS: '1',
      WORKER_POLL_INTERVAL_SECONDS: '0.5',
      LD_PRELOAD: LIBFAKETIME ?? '',
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_NO_CACHE: '1', // every read of the clock reads the file: a move is seen at once, everywhere
      FAKETIME_DONT_FAKE_MONOTONIC: '1', // timers keep real durations
    });
    // SIGTERM, not SIGKILL: the service stops its embedded Postgres (a postmaster outlives a kill -9).
    t.teardown(async () => {
      service.child.kill('SIGTERM');
      await service.exited;
    });
    const api = client(await listeningUrl(service, 90_000));
    const serviceNow = async () => Date.parse((await api.get('/healthz')).headers.get('date') ?? '');
    const { user } = await signUp(api);

    for (const { zone, at, daily, hourly } of TRANSITIONS) {
      const first = Date.parse(at);
      await setClock(first - 60_000);
      await eventually(async () => Math.abs((await serviceNow()) - (first - 60_000)) < 3_000, 10_000);
      // A login token from months ago has expired on the moved clock: log in again.
      const token = (await api.post('/login', { email: user.email, password: 'password123' })).body.token as string;

      const schedules = [];
      for (const [kind, fires] of [
        ['daily', daily],
        ['hourly', hourly],
      ] as const) {
        const created = await api.post(
          '/schedules',
          { title: `${zone} ${kind}`, cron: fires.cron, time_zone: zone },
          token,
        );
        t.is(created.status, 201, JSON.stringify(created.body));
        t.is(created.body.next_due_at, new Date(first).toISOString(), `${zone} ${kind}: the first occurrence`);
        schedules.push({ kind, fires, id: created.body.id as number });
      }

      await setClock(first - 2_000);
      for (const { kind, fires, id } of schedules) {
        const label = `${zone} ${kind} (${fires.cron}) at ${at}`;
        const tasks = await eventually(async () => {
          const listed = (await api.get(`/tasks?schedule_id=${id}&sort=due&limit=10`, token)).body as TaskJson[];
          return listed.filter((task) => task.status === 'completed').length >= 2 && listed;
        }, 20_000).catch(() => t.fail(`${label}: two occurrences did not complete`));
        if (!tasks) continue;
        const completed = tasks.filter((task) => task.status === 'completed');
        const pending = tasks.filter((task) => task.status === 'pending');
        t.deepEqual(
          completed.map((task) => task.due_at),
          [new Date(first).toISOString(), new Date(first + 3_000).toISOString()],
          `${label}: both seconds fire, once each`,
        );
        for (const task of completed) {
          const late = Date.parse(task.completed_at ?? '') - Date.parse(task.due_at);
          t.true(late >= 0 && late < 3_000, `${label}: task ${task.id} completed ${late} ms after its time`);
        }
        t.deepEqual(
          pending.map((task) => task.due_at),
          [fires.next],
          `${label}: the next occurrence, written with the completion`,
        );
        const schedule = (await api.get(`/schedules/${id}`, token)).body;
        t.is(schedule.skipped, 0, `${label}: nothing skipped`);
        t.is(schedule.next_due_at, fires.next);
        // Nothing of this transition waits across the next move of the clock.
        t.is((await api.delete(`/schedules/${id}`, token)).status, 204);
      }
    }
  },
);
