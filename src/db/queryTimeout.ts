import pg from 'pg';

type Callback = (error: Error | null, result?: unknown) => void;
type Query = (this: pg.Client, config: unknown, values?: unknown, callback?: unknown) => unknown;
/** A client's queries sent and not yet answered; pg answers them in the order they were sent. */
type Waiting = { count: number; since: number; timedOut: boolean };

let timeoutMs = 0;
const clients = new Map<pg.Client, Waiting>();

/**
 * A query on any pg client of this process whose answer does not come within `ms` fails with "Query read
 * timeout", and its connection is closed, so that no pool hands it out again (slonik destroys a connection
 * that ended). This is what pg's own `query_timeout` promises, checked another way because of what pg's way
 * cost under load. Measured in a web process serving lists (a scavenge every ~130 ms): pg arms a timer per
 * query whose callback holds the query, rows and all, and `client.query` without a callback (slonik's
 * driver calls it so) keeps the query behind a promise of pg's; with either, a tenth of everything
 * allocated was still reachable at each scavenge, through garbage already in the old generation (4 to 5 MB
 * of every 50), was promoted, and waited for a full collection: a tenth of the process's CPU per request.
 *
 * Here each query is sent in pg's callback form (wrapped in a promise of ours when the caller wants one:
 * the same value, or the same error), and the only record of it is a count and a time on its client's
 * entry, which lives as long as the client. One timer per process looks every 500 ms, so a query fails
 * between `ms` and `ms` + 0.5 s after it was sent, or after the one before it on its connection was
 * answered. Clients given their own `query_timeout` (pg-boss's pool) and pg's submittables (cursors,
 * streams) are left to pg. Installed once; a later call changes the limit for every client.
 */
export function setQueryTimeout(ms: number): void {
  timeoutMs = ms;
  if (installed) return;
  installed = true;
  setInterval(sweep, 500).unref();
  const query = pg.Client.prototype.query as unknown as Query;
  (pg.Client.prototype as unknown as { query: Query }).query = function (config, values, callback) {
    const ownTimeout = (config as { query_timeout?: number } | null)?.query_timeout;
    const { connectionParameters } = this as unknown as { connectionParameters: { query_timeout?: number } };
    const submittable = typeof (config as { submit?: unknown } | null)?.submit === 'function';
    if (config == null || submittable || ownTimeout || connectionParameters.query_timeout) {
      return query.call(this, config, values, callback);
    }
    const [args, done] = typeof values === 'function' ? [undefined, values as Callback] : [values, callback];
    if (typeof done === 'function') {
      query.call(this, config, args, watched(this, done as Callback));
      return undefined;
    }
    return new Promise((resolve, reject) => {
      const settle: Callback = (error, result) => {
        if (!error) return resolve(result);
        Error.captureStackTrace(error); // as pg does: a stack from here, not from the socket's read
        reject(error);
      };
      query.call(this, config, args, watched(this, settle));
    });
  };
}
let installed = false;

/** `done`, told "Query read timeout" instead of what pg says when the sweep closed the connection. */
function watched(client: pg.Client, done: Callback): Callback {
  if (timeoutMs <= 0) return done;
  let waiting = clients.get(client);
  if (!waiting) {
    waiting = { count: 0, since: 0, timedOut: false };
    clients.set(client, waiting);
    client.once('end', () => clients.delete(client));
  }
  const entry = waiting;
  if (entry.count++ === 0) entry.since = performance.now();
  return (error, result) => {
    entry.count--;
    entry.since = performance.now(); // the next one's answer is due from now
    done(entry.timedOut ? new Error('Query read timeout') : error, result);
  };
}

function sweep(): void {
  const now = performance.now();
  for (const [client, waiting] of clients) {
    if (waiting.count === 0 || waiting.timedOut || now - waiting.since < timeoutMs) continue;
    waiting.timedOut = true;
    // The connection may still answer, late, or never (a partition): either way it is not used again.
    // pg then fails every query waiting on it, each told the timeout. (The shape is checked at start,
    // src/db/internals.ts; should it be gone all the same, the client is ended instead: never a throw here.)
    const stream = (client as unknown as { connection?: { stream?: { destroy?(): void } } }).connection?.stream;
    try {
      if (typeof stream?.destroy === 'function') stream.destroy();
      else void client.end().catch(() => {});
    } catch {
      void client.end().catch(() => {});
    }
  }
}
