import type { CommonQueryMethods } from 'slonik';
import { findActor } from '../domain/users/queries.ts';

type ActorRow = NonNullable<Awaited<ReturnType<typeof findActor>>>;

/** However quiet the notifications, an entry is read again after this long. */
const TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

export type ActorCache = {
  /** The user's row as the request's token check needs it (id, role, token generation); null when gone. */
  read(db: CommonQueryMethods, id: number): Promise<ActorRow | null>;
  /** These users changed (token generation, role, deletion): their next request reads them again. */
  forget(ids: readonly number[]): void;
  /** Whether notifications reach this process: while they do not, nothing is cached and every read is fresh. */
  setListening(listening: boolean): void;
};

/**
 * A per-process cache of the per-request user read. It is correct only because every change to what it
 * holds is announced: the `users` trigger NOTIFYs the ids whose token generation or role changed, or that
 * were deleted (sql/1764800000000_accounts.sql), and the event hub hands them to `forget`. So it caches
 * only while the hub's LISTEN connection is up; when it drops, everything is forgotten and reads go to the
 * database until it is back. A read that was in flight while any user was forgotten is not stored (it may
 * predate the change). Entries also expire after a minute, and at most 10,000 are kept.
 */
export function createActorCache(): ActorCache {
  const entries = new Map<number, { row: ActorRow | null; at: number }>();
  let listening = false;
  let changes = 0; // how many notifications have come: a read stores only if none came while it ran

  return {
    async read(db, id) {
      const cached = listening ? entries.get(id) : undefined;
      if (cached && Date.now() - cached.at < TTL_MS) return cached.row;
      const before = changes;
      const row = await findActor(db, id);
      if (listening && changes === before) {
        entries.delete(id);
        if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as number);
        entries.set(id, { row, at: Date.now() });
      }
      return row;
    },
    forget(ids) {
      changes++;
      for (const id of ids) entries.delete(id);
    },
    setListening(value) {
      changes++;
      listening = value;
      entries.clear();
    },
  };
}
