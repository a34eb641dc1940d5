import type { CommonQueryMethods } from 'slonik';
import { findKeyCredential, type KeyCredential } from '../domain/apiKeys/keys.ts';
import { findActor } from '../domain/users/queries.ts';

type ActorRow = NonNullable<Awaited<ReturnType<typeof findActor>>>;

/** However quiet the notifications, an entry is read again after this long. */
const TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

type NotifiedCache<K, V> = {
  read(key: K, load: () => Promise<V | null>): Promise<V | null>;
  /** Forgets the entries `gone` names: their next request reads them again. */
  forget(gone: (key: K, value: V | null) => boolean): void;
  setListening(listening: boolean): void;
};

/**
 * A per-process cache of a per-request read. It is correct only because every change to what it holds is
 * announced by a NOTIFY that the event hub hands to `forget`. So it caches only while the hub's LISTEN
 * connection is up; when it drops, everything is forgotten and reads go to the database until it is back.
 * A read that was in flight while anything was forgotten is not stored (it may predate the change).
 * Entries also expire after a minute, and at most 10,000 are kept. With `keepMisses` false, a read that
 * found nothing is not stored (what is not there yet may be made at any time, unannounced).
 */
function createNotifiedCache<K, V>(keepMisses: boolean): NotifiedCache<K, V> {
  const entries = new Map<K, { value: V | null; at: number }>();
  let listening = false;
  let changes = 0; // how many notifications have come: a read stores only if none came while it ran
  return {
    async read(key, load) {
      const cached = listening ? entries.get(key) : undefined;
      if (cached && Date.now() - cached.at < TTL_MS) return cached.value;
      const before = changes;
      const value = await load();
      if (listening && changes === before && (value !== null || keepMisses)) {
        entries.delete(key);
        if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as K);
        entries.set(key, { value, at: Date.now() });
      }
      return value;
    },
    forget(gone) {
      changes++;
      for (const [key, entry] of entries) if (gone(key, entry.value)) entries.delete(key);
    },
    setListening(value) {
      changes++;
      listening = value;
      entries.clear();
    },
  };
}

export type ActorCache = {
  /** The user's row as the request's token check needs it (id, role, token generation); null when gone. */
  read(db: CommonQueryMethods, id: number): Promise<ActorRow | null>;
  /** These users changed (token generation, role, deletion): their next request reads them again. */
  forget(ids: readonly number[]): void;
  /** Whether notifications reach this process: while they do not, nothing is cached and every read is fresh. */
  setListening(listening: boolean): void;
};

/**
 * The user read of every request: the `users` trigger NOTIFYs the ids whose token generation or role
 * changed, or that were deleted (sql/1764800000000_accounts.sql).
 */
export function createActorCache(): ActorCache {
  const cache = createNotifiedCache<number, ActorRow>(true);
  return {
    read: (db, id) => cache.read(id, () => findActor(db, id)),
    forget(ids) {
      const gone = new Set(ids);
      cache.forget((id) => gone.has(id));
    },
    setListening: (listening) => cache.setListening(listening),
  };
}

export type KeyCache = {
  /** The API key with this hash (hex), as a request's check needs it; null when there is none. */
  read(db: CommonQueryMethods, hash: Buffer): Promise<KeyCredential | null>;
  /** These keys were revoked (or went with their user): refused from the next request on. */
  forget(ids: readonly number[]): void;
  setListening(listening: boolean): void;
};

/** The key read of every key request: the `api_keys` delete trigger NOTIFYs the ids revoked. */
export function createKeyCache(): KeyCache {
  const cache = createNotifiedCache<string, KeyCredential>(false);
  return {
    read: (db, hash) => cache.read(hash.toString('hex'), () => findKeyCredential(db, hash)),
    forget(ids) {
      const gone = new Set(ids);
      cache.forget((_, key) => key !== null && gone.has(key.id));
    },
    setListening: (listening) => cache.setListening(listening),
  };
}
