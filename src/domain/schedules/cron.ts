import { Cron } from 'croner';

/**
 * When a schedule fires: its cron read by croner (a well-kept parser: lists, ranges, steps, names, an
 * optional seconds field, the @ shorthands, and either day field matching when both are restricted, as in
 * Vixie cron), evaluated on the zone's wall clock by our own DST rule rather than the library's:
 * - a local time that does not exist (spring forward) fires once, the same distance past the gap
 *   (02:30 becomes 03:30; on Lord Howe's half-hour shift, 02:15 becomes 02:45);
 * - a local time that happens twice (fall back) fires once, at the first.
 * croner runs in UTC over wall-clock times (a wall time is written as the UTC instant with the same
 * fields), and `instantOf` turns each wall time into the zone's instant. (docs/api.md: Schedules.)
 */

export class CronError extends Error {
  override name = 'CronError';
  readonly field: 'cron' | 'time_zone';
  constructor(field: 'cron' | 'time_zone', message: string) {
    super(message);
    this.field = field;
  }
}

const SHORTHANDS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
const DAY_MS = 86_400_000;

/** Crons read so far, by their text (a worker reads the same few again and again). */
const parsed = new Map<string, Cron>();

/** A cron of five fields, six with seconds first, or a shorthand. @throws CronError naming `cron`. */
export function parseCron(text: string): Cron {
  let cron = parsed.get(text);
  if (!cron) {
    cron = parseCronText(text);
    if (parsed.size >= 1_000) parsed.clear();
    parsed.set(text, cron);
  }
  return cron;
}

function parseCronText(text: string): Cron {
  const cron = text.trim();
  const fields = cron.split(/\s+/).length;
  if (!SHORTHANDS.has(cron.toLowerCase()) && fields !== 5 && fields !== 6) {
    throw new CronError(
      'cron',
      'must have five fields (minute hour day month weekday), six with seconds first, or be @hourly, @daily, @weekly, @monthly or @yearly',
    );
  }
  if (cron.includes('?')) throw new CronError('cron', "must not use '?'");
  try {
    return new Cron(cron.toLowerCase().startsWith('@') ? cron.toLowerCase() : cron, {
      timezone: 'UTC', // wall-clock times: the zone is applied by instantOf
      mode: '5-or-6-parts',
      domAndDow: false,
    });
  } catch (error) {
    throw new CronError('cron', (error as Error).message.replace(/^CronPattern: /, ''));
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The IANA zone's canonical name. @throws CronError naming `time_zone` for an unknown zone. */
export function checkTimeZone(name: string): string {
  try {
    return formatterOf(name).resolvedOptions().timeZone;
  } catch {
    throw new CronError('time_zone', 'must be an IANA time zone, such as "Europe/Berlin" or "UTC"');
  }
}

function formatterOf(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, formatter);
  }
  return formatter;
}

/** The zone's wall clock at instant `ms`, as the UTC instant with the same fields (milliseconds kept). */
export function wallOf(ms: number, zone: string): number {
  const parts: Record<string, number> = {};
  for (const { type, value } of formatterOf(zone).formatToParts(ms)) parts[type] = Number(value);
  const wall = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return wall + (((ms % 1000) + 1000) % 1000);
}

/** The zone's offset from UTC at instant `ms`, in milliseconds. */
const offsetAt = (ms: number, zone: string) => wallOf(ms, zone) - ms;

/**
 * The instant at which the zone's clock reads `wall`: the first of two (fall back), or, for a time in a
 * gap (spring forward), the instant as far past the gap as the time is past its start.
 */
export function instantOf(wall: number, zone: string): number {
  const before = offsetAt(wall - DAY_MS, zone); // no zone changes its offset twice within two days
  const after = offsetAt(wall + DAY_MS, zone);
  const readsWall = [wall - before, wall - after].filter((instant) => wallOf(instant, zone) === wall);
  if (readsWall.length > 0) return Math.min(...readsWall);
  return wall - before; // in the gap: read with the offset before it
}

/** Fire times already worked out: the schedules of one cron and zone fire together (the top of a minute). */
const fires = new Map<string, number | null>();

/** The first time the schedule fires strictly after instant `afterMs`, or null when it never fires again. */
export function nextFireAfter(cron: Cron, zone: string, afterMs: number): number | null {
  // Cron times are whole seconds, so every instant of one second has the same next time.
  const key = `${cron.getPattern()}\u0000${zone}\u0000${Math.floor(afterMs / 1000)}`;
  let next = fires.get(key);
  if (next === undefined) {
    next = computeNextFireAfter(cron, zone, afterMs);
    if (fires.size >= 10_000) fires.clear();
    fires.set(key, next);
  }
  return next;
}

function computeNextFireAfter(cron: Cron, zone: string, afterMs: number): number | null {
  // The search starts at the earliest wall time that can still be ahead: for a day after a spring forward
  // that is the clock read with the offset before it, since the gap's times (02:15 read as 03:15) lie
  // behind the wall clock (03:05) yet fire after now.
  let wall = afterMs + Math.min(offsetAt(afterMs - DAY_MS, zone), offsetAt(afterMs, zone));
  // A few wall times may map to instants not after `afterMs` (a repeated hour's second pass, a time
  // shifted past a gap onto one that already fired): move on to the next.
  for (let step = 0; step < 10_000; step++) {
    const next = cron.nextRun(new Date(wall));
    if (!next) return null;
    const instant = instantOf(next.getTime(), zone);
    if (instant > afterMs) return instant;
    wall = next.getTime();
  }
  return null;
}

/** The fire times in (`afterMs`, `untilMs`], counted up to `limit`. */
export function countFiresBetween(cron: Cron, zone: string, afterMs: number, untilMs: number, limit = 100_000) {
  let count = 0;
  for (let at = nextFireAfter(cron, zone, afterMs); at !== null && at <= untilMs && count < limit; ) {
    count++;
    at = nextFireAfter(cron, zone, at);
  }
  return count;
}

/** Enough fire times to see a cron's shortest step (its fields repeat well within them), at a few ms a check. */
const SAMPLE = 200;

/**
 * The shortest time between two fire times of `cron`, in seconds, over its next SAMPLE times from `fromMs`
 * (on the wall clock, as an interval is meant). @throws CronError when it never fires.
 */
export function shortestIntervalSeconds(cron: Cron, fromMs: number): number {
  const times = cron.nextRuns(SAMPLE, new Date(fromMs)).map((date) => date.getTime());
  if (times.length === 0) throw new CronError('cron', 'never fires');
  if (times.length === 1) return Number.POSITIVE_INFINITY;
  let shortest = Number.POSITIVE_INFINITY;
  for (let i = 1; i < times.length; i++) shortest = Math.min(shortest, ((times[i] ?? 0) - (times[i - 1] ?? 0)) / 1000);
  return shortest;
}

/** The instant as the zone's local time in RFC 3339 with its offset: "2027-03-14T03:30:00-04:00". */
export function localIso(ms: number, zone: string): string {
  const wall = wallOf(ms, zone);
  const offsetMinutes = Math.round((wall - ms) / 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${new Date(wall - (wall % 1000)).toISOString().slice(0, 19)}${offset}`;
}
