import test from 'ava';
import fc from 'fast-check';
import { signToken } from '../src/domain/users/tokens.ts';
import { query } from './helpers/db.ts';
import { signUp, startService, TEST_SECRET, type TestService } from './helpers/service.ts';

let service: TestService;
let user: Awaited<ReturnType<typeof signUp>>;
let admin: Awaited<ReturnType<typeof signUp>>;
let taskIds: number[];
test.before(async () => {
  // The cursor property opens many event streams one after another: their slots free as each client goes.
  service = await startService({ watchPerUser: 1000 });
  admin = await signUp(service.api, 'admin');
  user = await signUp(service.api);
  taskIds = [];
  for (const title of ['one', 'two']) taskIds.push((await service.api.post('/tasks', { title }, user.token)).body.id);
});
test.after.always(() => service?.stop());

/** Everything a request could change, as one digest (the rate limit counters aside). */
const stateDigest = async () =>
  (
    await query<{ digest: string }>(
      service.databaseUrl,
      `select md5(concat_ws('|',
         (select string_agg(u::text, ',' order by u.id) from users u),
         (select string_agg(t::text, ',' order by t.id) from tasks t),
         (select string_agg(j.id::text || j.state, ',' order by j.id) from pgboss.job j),
         (select string_agg(k::text, ',' order by k.key) from idempotency_keys k))) digest`,
    )
  )[0]?.digest;

const printable = fc.string({ unit: fc.constantFrom(...'abcXYZ019 -_./:;,"\'{}[]%&=?~!@#$^*()+<>\\'.split('')) });
const anyString = fc.string({ unit: 'binary', maxLength: 40 });
const id = fc.oneof(
  fc.constantFrom('1', '2', '3', '0', '-1', '1e3', '0x10', '9007199254740993', '99999999999999999999', '%00', '..'),
  fc.integer({ min: -5, max: 50 }).map(String),
  printable.map(encodeURIComponent),
);
const path = fc.oneof(
  fc.constantFrom('/register', '/login', '/me', '/tasks', '/tasks/', '/healthz', '/readyz', '/TASKS', '/login/'),
  fc.constantFrom('/me/password', '/logout', '/users', '/Users/', '/me/'),
  id.map((value) => `/tasks/${value}`),
  id.map((value) => `/users/${value}`),
  printable.map((value) => `/${encodeURIComponent(value)}`),
);
const queryString = fc
  .dictionary(
    fc.constantFrom('status', 'sort', 'limit', 'cursor', 'user_id', 'role', 'x', 'status[]'),
    fc.oneof(anyString, fc.constantFrom('due', 'created', '2030-01-01T00:00:00.000Z_1', '1')),
    { maxKeys: 3 },
  )
  .map((params) => {
    const search = new URLSearchParams(params).toString();
    return search ? `?${search}` : '';
  });
const fieldValue = fc.oneof(anyString, fc.jsonValue({ maxDepth: 2 }), fc.constant('password123'));
/** Due times valid and not: past, near, far, beyond a year, without a zone, other offsets, not dates. */
const dueAt = fc.oneof(
  fc.integer({ min: -86_400, max: 400 * 86_400 }).map((seconds) => new Date(Date.now() + seconds * 1000).toISOString()),
  fc
    .integer({ min: 60, max: 86_400 })
    .map((seconds) => `${new Date(Date.now() + seconds * 1000).toISOString().slice(0, 19)}+00:00`),
  fc
    .integer({ min: 60, max: 86_400 })
    .map((seconds) => new Date(Date.now() + seconds * 1000).toISOString().slice(0, 19)),
  fieldValue,
);
const delaySeconds = fc.oneof(
  fc.integer({ min: -10, max: 31_536_010 }),
  fc.double({ noNaN: true }),
  fc.integer({ min: 0, max: 600 }).map(String),
  fieldValue,
);
const body = fc.oneof(
  fc
    .record(
      {
        title: fieldValue,
        description: fieldValue,
        status: fieldValue,
        due_at: dueAt,
        delay_seconds: delaySeconds,
        email: fieldValue,
        password: fieldValue,
        current_password: fieldValue,
        new_password: fieldValue,
        role: fieldValue,
      },
      { requiredKeys: [] },
    )
    .map((value) => JSON.stringify(value)),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
  anyString,
  fc.constant(undefined),
);
const authorization = fc.oneof(
  fc.constant(undefined),
  fc.constant(() => `Bearer ${user.token}`),
  fc.constant(() => admin.token),
  fc.constant(
    () => `Bearer ${signToken({ id: 999_999, role: 'admin' }, { secret: TEST_SECRET, expiresInSeconds: 60 })}`,
  ),
  printable.map((value) => () => `Bearer ${value}`),
);
const headers = fc.record(
  {
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ),
    'idempotency-key': printable,
    prefer: printable,
    'x-request-id': printable,
    'x-forwarded-for': printable,
  },
  { requiredKeys: [] },
);
const method = fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'OPTIONS', 'HEAD', 'PROPFIND');

// Each property compares digests of the whole database: the tests run one at a time, PATCHes first
// (the general property may delete the tasks they change).
test.serial(
  'generated task changes by their owner: valid ones succeed, invalid ones are 400 and change nothing',
  async (t) => {
    const outcomes = { accepted: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...taskIds),
        fc.oneof(
          fc.record({ title: fieldValue, description: fieldValue, status: fieldValue }, { requiredKeys: [] }),
          fc.record({ title: fieldValue, due_at: dueAt, delay_seconds: delaySeconds }, { requiredKeys: [] }),
        ),
        async (taskId, change) => {
          const before = await stateDigest();
          const reply = await service.api.patch(`/tasks/${taskId}`, change, user.token);
          if (reply.status === 200) {
            outcomes.accepted++;
            return;
          }
          outcomes.refused++;
          // A key such as __proto__ is refused by the body parser itself (invalid_json); the rest by validation;
          // a valid due time for a task completed by an earlier run is a conflict.
          const rescheduling = 'due_at' in change || 'delay_seconds' in change;
          const expected =
            (reply.status === 400 && ['validation_failed', 'invalid_json'].includes(reply.body.error.code)) ||
            (reply.status === 409 && reply.body.error.code === 'conflict' && rescheduling);
          if (!expected) {
            throw new Error(`PATCH ${JSON.stringify(change)} -> ${reply.status} ${JSON.stringify(reply.body)}`);
          }
          if ((await stateDigest()) !== before)
            throw new Error(`a refused PATCH changed something: ${JSON.stringify(change)}`);
        },
      ),
      { numRuns: 150, includeErrorInReport: true },
    );
    t.log(`PATCH: ${outcomes.accepted} accepted, ${outcomes.refused} refused`);
    t.true(outcomes.accepted > 0 && outcomes.refused > 0, 'both valid and invalid changes were generated');
  },
);

test.serial(
  'generated requests over every route: never a 5xx, errors always JSON, a refused request changes nothing',
  async (t) => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        method,
        path,
        queryString,
        headers,
        authorization,
        body,
        async (verb, route, search, extra, auth, payload) => {
          const before = await stateDigest();
          const sent: Record<string, string> = { ...extra };
          const token = auth?.();
          if (token) sent.authorization = token;
          const response = await fetch(`${service.baseUrl}${route}${search}`, {
            method: verb,
            headers: sent,
            ...(payload !== undefined && verb !== 'GET' && verb !== 'HEAD' && { body: payload }),
          });
          const text = await response.text();
          seen.set(response.status, (seen.get(response.status) ?? 0) + 1);
          const where = `${verb} ${route}${search} ${JSON.stringify(sent)} ${payload} -> ${response.status} ${text}`;
          if (response.status >= 500) throw new Error(`a 5xx: ${where}`);
          if (response.status >= 400) {
            if (verb !== 'HEAD') {
              const parsed = JSON.parse(text);
              if (typeof parsed.error?.code !== 'string' || typeof parsed.error?.message !== 'string') {
                throw new Error(`not the JSON error shape: ${where}`);
              }
            }
            if ((await stateDigest()) !== before) throw new Error(`a refused request changed something: ${where}`);
          } else if (text !== '' && verb !== 'HEAD') {
            // Successes are JSON, but for the web app's page itself (GET /, which only this path generator's
            // `/` reaches: its files live under /app/).
            if (response.headers.get('content-type')?.startsWith('text/html')) {
              if (new URL(`${service.baseUrl}${route}`).pathname !== '/') throw new Error(`HTML from ${where}`);
            } else {
              JSON.parse(text);
            }
          }
        },
      ),
      { numRuns: 400, includeErrorInReport: true },
    );
    t.log(
      `statuses seen: ${[...seen]
        .sort(([a], [b]) => a - b)
        .map(([status, n]) => `${status}×${n}`)
        .join(' ')}`,
    );
    t.true(seen.size >= 6, 'the generator reaches many outcomes');
  },
);

/** Cursor text at the edges of what Postgres takes: years 0 to 9999, day and time edges, ids near 2^53 and 2^64. */
const year = fc.oneof(fc.constantFrom(0, 1, 1969, 1970, 2000, 9999), fc.integer({ min: 0, max: 9999 }));
const pad = (value: number, width: number) => String(value).padStart(width, '0');
const timestamp = fc
  .record({
    year,
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.integer({ min: 0, max: 32 }),
    hour: fc.constantFrom(0, 12, 23, 24),
    minute: fc.constantFrom(0, 59, 60),
    ms: fc.constantFrom(0, 999),
  })
  .map(
    ({ year: y, month, day, hour, minute, ms }) =>
      `${pad(y, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:59.${pad(ms, 3)}Z`,
  );
const cursorId = fc.oneof(
  fc.constantFrom('0', '1', '9007199254740991', '9007199254740992', '9223372036854775807', '18446744073709551616'),
  fc.integer({ min: 0, max: 1_000_000 }).map(String),
  fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
);
/** Real instants from year 0 to 9999, as the API writes them. */
const instant = fc
  .date({ min: new Date('0000-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true })
  .map((date) => date.toISOString());
const cursorText = fc.oneof(
  cursorId,
  fc.tuple(instant, cursorId).map(([at, id]) => `${at}_${id}`),
  fc.tuple(timestamp, cursorId).map(([at, id]) => `${at}_${id}`),
  fc.tuple(cursorId, cursorId).map(([tx, id]) => `${tx}-${id}`),
  anyString,
);

test.serial(
  'generated cursors of every list route reach Postgres: never a 5xx, a refused one names cursor',
  async (t) => {
    // Users of its own: the property before may have logged the others out.
    const user = await signUp(service.api);
    const admin = await signUp(service.api);
    await query(service.databaseUrl, `update users set role = 'admin' where id = $1`, [admin.user.id]);
    const endpoint = await service.api.post(
      '/webhooks',
      { url: 'http://127.0.0.1:9/never-called', events: ['task.deleted'] },
      user.token,
    );
    t.is(endpoint.status, 201);
    const lists = [
      (cursor: string) => ({ path: `/tasks?cursor=${cursor}`, token: user.token }),
      (cursor: string) => ({ path: `/tasks?sort=due&cursor=${cursor}`, token: user.token }),
      (cursor: string) => ({ path: `/tasks?sort=due&status=pending&cursor=${cursor}`, token: admin.token }),
      (cursor: string) => ({ path: `/tasks?sort=created&status=completed&cursor=${cursor}`, token: admin.token }),
      (cursor: string) => ({ path: `/users?cursor=${cursor}`, token: admin.token }),
      (cursor: string) => ({ path: `/users?role=admin&cursor=${cursor}`, token: admin.token }),
      (cursor: string) => ({ path: `/webhooks/${endpoint.body.id}/deliveries?cursor=${cursor}`, token: user.token }),
    ];
    const outcomes = { pages: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...lists), cursorText, async (list, cursor) => {
        const { path: target, token } = list(encodeURIComponent(cursor));
        const response = await fetch(`${service.baseUrl}${target}`, { headers: { authorization: token } });
        const body = (await response.json()) as any;
        if (response.status === 200 && Array.isArray(body)) {
          outcomes.pages++;
          return;
        }
        const named =
          response.status === 400 && body.error?.details?.some((d: { field: string }) => d.field === 'cursor');
        if (!named) throw new Error(`${target} -> ${response.status} ${JSON.stringify(body)}`);
        outcomes.refused++;
      }),
      {
        numRuns: 400,
        includeErrorInReport: true,
        // Found by hand: year 0 is a Date to JavaScript and out of range to Postgres (it was a 500).
        examples: [
          [lists[1] as (typeof lists)[number], '0000-01-01T00:00:00.000Z_1'],
          [lists[2] as (typeof lists)[number], '0000-12-31T23:59:59.999Z_5'],
        ],
      },
    );
    // The event stream's cursor is its Last-Event-ID header: the stream opens (200) or it is a 400 naming it.
    await fc.assert(
      fc.asyncProperty(cursorText, async (cursor) => {
        const controller = new AbortController();
        const response = await fetch(`${service.baseUrl}/tasks/events`, {
          headers: { authorization: user.token, 'last-event-id': cursor.replace(/[^\x20-\x7e]/g, '') },
          signal: controller.signal,
        });
        if (response.status === 200) {
          controller.abort();
          return;
        }
        const body = (await response.json()) as any;
        if (response.status !== 400 || body.error.details?.[0]?.field !== 'Last-Event-ID') {
          throw new Error(`Last-Event-ID ${cursor} -> ${response.status} ${JSON.stringify(body)}`);
        }
      }),
      { numRuns: 100, includeErrorInReport: true },
    );
    t.log(`list cursors: ${outcomes.pages} pages, ${outcomes.refused} refused`);
    t.true(outcomes.pages > 0 && outcomes.refused > 0, 'both kinds of cursor were generated');
  },
);
