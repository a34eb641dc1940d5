import type { DatabasePool } from 'slonik';
import { coalesce } from '../coalesce.ts';
import { listen } from '../db/listen.ts';
import { currentCursor, type EventCursor, isAfter, readEvents, type TaskEvent } from '../domain/tasks/events.ts';
import type { Logger } from '../log.ts';
import { type ActorCache, createActorCache, createKeyCache, type KeyCache } from './actorCache.ts';

export type Watcher = {
  /** Who watches: their watch ends when their tokens are revoked, their role changes or their account goes. */
  readonly actorId: number;
  /** The API key it was opened with, if any: the watch ends when the key is revoked. */
  readonly keyId?: number | undefined;
  /** One user's events, or everyone's (null: an admin's stream). */
  readonly userId: number | null;
  /** Events in order, once no older transaction can still add one in front (what streams need). */
  onEvent?(event: TaskEvent): void;
  /**
   * A task that was completed or deleted, as soon as its transaction commits (what a wait needs: no
   * ordering, so a long transaction elsewhere on the server never delays it).
   */
  onTaskChanged?(taskId: number): void;
  /** The listening connection came back after a cut: whatever was missed must be read from the table. */
  onResync(): void;
  /** The hub is closing (shutdown): answer now. */
  onClose(): void;
  /** The watcher's tokens were revoked, their role changed, or their account is gone: check again now. */
  onRevoked(): void;
};

export type EventHub = {
  /**
   * Starts delivering events to `watcher`; resolves (with the way to stop) once the hub's position is
   * fixed. A watcher reads the table itself only after that: what finished before is in its read, what
   * finishes after reaches it through the hub (and a few may come both ways: compare cursors).
   */
  watch(watcher: Watcher): Promise<() => void>;
  /** How many waits and streams watch now (a test waits for its own to be counted before it acts). */
  watching(): number;
  /** How many times the hub has read the events table (a test waits for a read rather than sleep). */
  reads(): number;
  /** The per-request user read, cached while this hub's LISTEN connection is up (see actorCache.ts). */
  readonly actors: ActorCache;
  /** The per-request API key read, likewise. */
  readonly keys: KeyCache;
  readonly closed: boolean;
  close(): Promise<void>;
};

const BATCH = 500;

/**
 * One LISTEN connection per web process on the `task_events` channel, fanned out in memory to the
 * requests and streams waiting in this process. A notification is only a nudge: the hub then reads the
 * new events from the table once (not once per watcher), and only while someone watches. When the
 * connection drops it reconnects with backoff, reads what it missed, and tells every watcher to resync.
 */
export async function startEventHub({
  url,
  db,
  log,
}: {
  url: string;
  db: DatabasePool;
  log: Logger;
}): Promise<EventHub> {
  const watchers = new Set<Watcher>();
  const actors = createActorCache();
  const keys = createKeyCache();
  let cursor: EventCursor | null = null; // where the hub has read up to; null while nobody watches
  let starting: Promise<void> | null = null;
  let expected: EventCursor | null = null; // the newest event a notification announced
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let withheldDelayMs = 50;
  let reads = 0;

  /** Reads the new events once for every watcher; notifications that come meanwhile cost one more read. */
  const pump = coalesce(async () => {
    try {
      // Only ordered watchers (streams) need the table read.
      if (closed || !cursor || ![...watchers].some((watcher) => watcher.onEvent)) return;
      let rows: readonly TaskEvent[];
      do {
        rows = await readEvents(db, cursor, {}, BATCH);
        reads++;
        for (const event of rows) {
          cursor = { tx: event.tx, id: event.id };
          for (const watcher of watchers) {
            if (watcher.userId === null || watcher.userId === event.user_id) watcher.onEvent?.(event);
          }
        }
      } while (rows.length === BATCH);
      // An announced event is held back while an older transaction still runs: look again, less and less
      // often (50 ms doubling to 1 s) until it is through.
      if (expected && cursor && isAfter(expected, cursor) && !closed && watchers.size > 0) {
        clearTimeout(retry);
        retry = setTimeout(() => void pump(), withheldDelayMs);
        withheldDelayMs = Math.min(withheldDelayMs * 2, 1_000);
      } else {
        withheldDelayMs = 50;
      }
    } catch (error) {
      log.warn({ err: error }, 'reading task events failed; the next notification retries');
    }
  });

  // Listening before anyone watches: a watcher never waits for a notification sent before LISTEN. When the
  // database is not there yet, the hub keeps trying in the background.
  const listener = await listen({
    url,
    channel: 'task_events',
    log,
    onNotification(payload) {
      try {
        const announced = JSON.parse(payload) as {
          tx?: string;
          id?: number;
          changed?: [number, string][];
          revoked?: number[];
          keys?: number[];
        };
        if (announced.keys) {
          keys.forget(announced.keys); // before the watchers check their key again
          const revoked = new Set(announced.keys);
          for (const watcher of watchers)
            if (watcher.keyId !== undefined && revoked.has(watcher.keyId)) watcher.onRevoked();
          return;
        }
        if (announced.revoked) {
          actors.forget(announced.revoked); // before the watchers check their actor again
          const revoked = new Set(announced.revoked);
          for (const watcher of watchers) if (revoked.has(watcher.actorId)) watcher.onRevoked();
          return; // no task event: nothing to read
        }
        const event = { tx: BigInt(announced.tx ?? 0), id: Number(announced.id ?? 0) };
        if (!expected || isAfter(event, expected)) expected = event;
        for (const [taskId] of announced.changed ?? []) {
          for (const watcher of watchers) watcher.onTaskChanged?.(taskId);
        }
      } catch (error) {
        log.warn({ err: error }, 'a task events notification could not be read');
      }
      void pump();
    },
    onConnectionChange(up) {
      actors.setListening(up);
      keys.setListening(up);
    },
    async onReconnect() {
      await pump(); // what happened while it was away
      for (const watcher of watchers) watcher.onResync();
    },
  });

  return {
    async watch(watcher) {
      if (!cursor && watcher.onEvent) {
        // The first watcher fixes where the hub starts: before every transaction still running.
        starting ??= currentCursor(db)
          .then((position) => {
            cursor ??= position;
          })
          .finally(() => {
            starting = null;
          });
        await starting;
      }
      watchers.add(watcher);
      // Events announced before this watcher came may still be held back by an older transaction, and no
      // further notification may come: read now, and keep looking while they are held.
      if (watcher.onEvent) void pump();
      return () => {
        watchers.delete(watcher);
        // No stream left to read the table for: stop reading (the next one fixes a new position).
        if (![...watchers].some((other) => other.onEvent)) cursor = null;
      };
    },
    watching: () => watchers.size,
    reads: () => reads,
    actors,
    keys,
    get closed() {
      return closed;
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      for (const watcher of watchers) watcher.onClose();
      watchers.clear();
      await listener.close();
    },
  };
}
