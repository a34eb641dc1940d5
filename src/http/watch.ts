import { PassThrough } from 'node:stream';
import type { Context } from 'koa';
import {
  currentCursor,
  type EventCursor,
  formatCursor,
  isAfter,
  parseCursor,
  readEvents,
  type TaskEvent,
} from '../domain/tasks/events.ts';
import type { Task } from '../domain/tasks/task.ts';
import type { Actor } from '../domain/users/user.ts';
import { AppError } from '../errors.ts';
import { apiKeyOf, tokenExpiresAt } from './auth.ts';
import type { AppDeps } from './deps.ts';

/** The longest `Prefer: wait` honoured: above the default 120 s delay, below common proxy timeouts. */
export const MAX_WAIT_SECONDS = 130;
const HEARTBEAT_MS = 15_000;
/** setTimeout's longest delay (about 24.8 days); a stream whose token lives longer ends then, and reconnects. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const REPLAY_BATCH = 500;

/** `wait=N` of a `Prefer` header (RFC 7240), in seconds; null when absent. */
export function preferredWait(ctx: Context): number | null {
  for (const preference of ctx.get('Prefer').split(',')) {
    const match = /^\s*wait\s*=\s*"?(\d{1,9})"?\s*$/i.exec(preference);
    if (match) return Number(match[1]);
  }
  return null;
}

/**
 * Counts open waits and streams, per user and for the process, and shares the process's slots fairly: a
 * user holds at most `perUser`, and the last quarter of the process's slots is kept for users who have none
 * open. So a user with none open can always open one while any slot is free, however many a few accounts
 * hold (together they reach at most three quarters). Beyond: 429 with Retry-After.
 * @returns the release to call when the wait or stream ends (exactly once).
 */
export function createWatchLimits(limits: { perUser: number; perProcess: number }) {
  const perUser = new Map<number, number>();
  const shared = limits.perProcess - Math.ceil(limits.perProcess / 4); // what users with some open may fill
  let total = 0;
  return function acquire(userId: number): () => void {
    const mine = perUser.get(userId) ?? 0;
    const refusal =
      mine >= limits.perUser
        ? `at most ${limits.perUser} open waits and event streams per user`
        : total >= limits.perProcess
          ? 'too many open waits and event streams on this server: retry shortly'
          : mine > 0 && total >= shared
            ? 'this server keeps its last open slots for users who have none: close one of yours, or retry shortly'
            : null;
    if (refusal) throw new AppError(429, 'rate_limited', refusal, undefined, { 'Retry-After': '5' });
    perUser.set(userId, mine + 1);
    total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      total--;
      const left = (perUser.get(userId) ?? 1) - 1;
      if (left === 0) perUser.delete(userId);
      else perUser.set(userId, left);
    };
  };
}
export type AcquireWatch = ReturnType<typeof createWatchLimits>;

/**
 * Long-polling: resolves when this pending task completes or is deleted (its event arrives), when the
 * listener resyncs after a cut, when the service shuts down, when the actor's tokens are revoked, when the client goes away (the response's
 * `close`: a request's own `close` only says its body was read), or after
 * `seconds`, whichever comes first. The caller then reads the task again.
 */
export async function waitForChange(
  ctx: Context,
  hub: AppDeps['events'],
  actor: Actor,
  task: Pick<Task, 'id' | 'user_id'>,
  seconds: number,
): Promise<{ changed: Promise<void>; stop: () => void }> {
  let resolveChanged = () => {};
  const changed = new Promise<void>((resolve) => {
    resolveChanged = resolve;
  });
  let unwatch = () => {};
  const stop = () => {
    unwatch();
    clearTimeout(timer);
    ctx.res.off('close', done);
  };
  const done = () => {
    stop();
    resolveChanged();
  };
  const timer = setTimeout(done, seconds * 1000);
  ctx.res.once('close', done);
  unwatch = await hub.watch({
    actorId: actor.id,
    keyId: apiKeyOf(ctx),
    userId: task.user_id,
    onTaskChanged: (taskId) => {
      if (taskId === task.id) done();
    },
    onResync: done,
    onClose: done,
    onRevoked: done, // the caller checks the token again
  });
  return { changed, stop };
}

/**
 * GET /tasks/events: the actor's task events as Server-Sent Events (an admin's: everyone's, or one
 * user's with ?user_id=). With Last-Event-ID, the events since that one are replayed from the table
 * first, so a reconnect misses nothing; live events follow in the same order, each exactly once. It ends
 * at its token's expiry, and when its token or key is revoked.
 */
export async function streamEvents(
  ctx: Context,
  deps: Pick<AppDeps, 'db' | 'events' | 'log'>,
  actor: Actor,
  userId: number | undefined,
  release: () => void,
): Promise<void> {
  const lastEventId = ctx.get('Last-Event-ID');
  const resumeFrom = lastEventId === '' ? null : parseCursor(lastEventId);
  if (lastEventId !== '' && !resumeFrom) {
    throw new AppError(400, 'validation_failed', 'the request has invalid fields', [
      { field: 'Last-Event-ID', message: 'must be an event id this stream sent' },
    ]);
  }
  const filter = { userId: actor.role === 'admin' ? userId : actor.id };
  let cursor: EventCursor = resumeFrom ?? (await currentCursor(deps.db));

  const stream = new PassThrough();
  let ended = false;
  /**
   * Writes while the stream is open. The client can leave, and the token expire, during any await here
   * (the hub's first read, the replay): a write after the end would be an uncaught stream error.
   */
  const write = (text: string) => {
    if (!ended) stream.write(text);
  };
  const send = (event: TaskEvent) => {
    if (!isAfter(event, cursor)) return; // already sent (replay and live overlap)
    cursor = { tx: event.tx, id: event.id };
    const data = { type: event.type, task_id: event.task_id, user_id: event.user_id, at: event.at };
    write(`id: ${formatCursor(cursor)}\nevent: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  // Live events wait in `held` while the table is being read, then follow it in order.
  let held: TaskEvent[] | null = [];
  const replay = async () => {
    held ??= [];
    while (!ended) {
      const rows = await readEvents(deps.db, cursor, filter, REPLAY_BATCH);
      for (const row of rows) send(row);
      if (rows.length < REPLAY_BATCH) break;
    }
    const waiting: TaskEvent[] = held;
    held = null;
    for (const event of waiting) send(event);
  };

  let unwatch = () => {};
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    clearTimeout(expiry);
    unwatch();
    release();
    stream.end();
  };
  const heartbeat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS);
  // The stream is only as good as its token: it ends at the token's expiry (the client reconnects with a
  // fresh one and Last-Event-ID, missing nothing).
  const expiry = setTimeout(end, Math.min(Math.max(0, tokenExpiresAt(ctx) - Date.now()), MAX_TIMER_MS));
  ctx.res.once('close', end); // the response's close: the client went away, or it ended
  if (ctx.req.socket.destroyed) end(); // it went away before that listener was there (the first await)
  try {
    unwatch = await deps.events.watch({
      actorId: actor.id,
      keyId: apiKeyOf(ctx),
      userId: filter.userId ?? null,
      onEvent: (event) => (held ? held.push(event) : send(event)),
      onResync: () => void replay().catch(end),
      onClose: end,
      onRevoked: end, // a reconnect authenticates again
    });
  } catch (error) {
    end();
    throw error;
  }
  if (ended) unwatch(); // the client left while the hub was starting

  ctx.state.unbounded = true; // no request deadline: the stream lasts as long as the client stays
  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('X-Accel-Buffering', 'no'); // proxies must not buffer the stream
  ctx.body = stream;
  write('retry: 2000\n\n');
  try {
    await replay();
  } catch (error) {
    deps.log.warn({ err: error }, 'replaying task events failed; the stream ends');
    end();
  }
}
