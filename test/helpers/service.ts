import type { Server } from 'node:http';
import type Koa from 'koa';
import { loadConfig } from '../../src/config.ts';
import type { DestinationSettings } from '../../src/delivery/send.ts';
import type { AppDeps } from '../../src/http/deps.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { startService as startServiceOf, stopService } from '../../src/service.ts';
import { PRODUCTION_TIMING, type Timing } from '../../src/timing.ts';
import { createTestDatabase } from './db.ts';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';

/**
 * The service's own timing in tests: production's (src/timing.ts), but a failed webhook attempt is retried
 * within a second rather than after a doubling backoff, so the retry tests wait on facts in seconds.
 * Production's defaults are checked where they take effect (test/timing.test.ts, the 120 s delay, the 10 s
 * attempt, the heartbeat's takeover in recovery.test.ts, the parking horizon in wake.test.ts).
 */
export const TEST_TIMING: Timing = {
  ...PRODUCTION_TIMING,
  webhookRetry: { ...PRODUCTION_TIMING.webhookRetry, maxDelaySeconds: 1 },
};

export type TestService = Awaited<ReturnType<typeof startService>>;

/**
 * The real service in this process, on a database of its own and an ephemeral port, wired as production
 * wires it (src/service.ts), from a configuration of these options: a web process (HTTP API, pg-boss
 * writing through the API pool), or with `worker: true` the all-in-one process with the worker. bcrypt
 * runs at cost 4 to keep the suite fast, and the suite registers and logs in far more often than a person
 * would: high rate limits unless a test sets them.
 */
export async function startService(
  options: {
    delaySeconds?: number;
    worker?: boolean;
    /** The worker's safety-net poll (2 s); a long one shows that the wake timer completed a task on time. */
    pollIntervalSeconds?: number;
    expiresIn?: number;
    authPerMinute?: number;
    loginFailures?: number;
    trustProxyHops?: number;
    /** Another service's database, to run a second web process on it. */
    databaseUrl?: string;
    metricsToken?: string;
    watchPerUser?: number;
    watchPerProcess?: number;
    /** Where webhooks may go: by default anywhere, loopback and http included (the receivers run here). */
    webhooks?: DestinationSettings;
    /** An endpoint failing every attempt for this many seconds is disabled (5 days). */
    disableWebhooksAfterSeconds?: number;
    /** Where the service logs (silent by default). */
    log?: Logger;
    /** The service's own intervals and horizons (TEST_TIMING). */
    timing?: Timing;
    /** SCHEDULE_MIN_INTERVAL_SECONDS (60). */
    minScheduleIntervalSeconds?: number;
    /** RECONCILE_INTERVAL_SECONDS (an hour here: the tests that need it say so). */
    reconcileIntervalSeconds?: number;
  } = {},
) {
  const webhookDestinations = options.webhooks ?? { allowPrivateNetworks: true, allowHttp: true };
  const database = options.databaseUrl
    ? { url: options.databaseUrl, drop: async () => {} }
    : await createTestDatabase();
  const log = options.log ?? createLogger({ LOG_LEVEL: (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent' });
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    JWT_SECRET: TEST_SECRET,
    JWT_EXPIRES_IN: String(options.expiresIn ?? 3600),
    BCRYPT_COST: '4',
    TASK_COMPLETION_DELAY_SECONDS: String(options.delaySeconds ?? 120),
    DATABASE_POOL_SIZE: '5',
    WORKER_POOL_SIZE: '5',
    WORKER_POLL_INTERVAL_SECONDS: String(options.pollIntervalSeconds ?? 2),
    RECONCILE_INTERVAL_SECONDS: String(options.reconcileIntervalSeconds ?? 3600),
    SCHEDULE_MIN_INTERVAL_SECONDS: String(options.minScheduleIntervalSeconds ?? 60),
    RATE_LIMIT_AUTH_PER_MINUTE: String(options.authPerMinute ?? 100_000),
    RATE_LIMIT_LOGIN_FAILURES: String(options.loginFailures ?? 100_000),
    TRUST_PROXY: String(options.trustProxyHops ?? 0),
    WATCH_LIMIT_PER_USER: String(options.watchPerUser ?? 10),
    WATCH_LIMIT_PER_PROCESS: String(options.watchPerProcess ?? 1000),
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: String(webhookDestinations.allowPrivateNetworks),
    WEBHOOK_ALLOW_HTTP: String(webhookDestinations.allowHttp),
    WEBHOOK_POLL_INTERVAL_SECONDS: '1',
    ...(options.disableWebhooksAfterSeconds && { WEBHOOK_DISABLE_AFTER: String(options.disableWebhooksAfterSeconds) }),
    ...(options.metricsToken && { METRICS_TOKEN: options.metricsToken }),
  });
  const service = await startServiceOf(config, {
    role: options.worker ? 'all' : 'web',
    url: database.url,
    directUrl: database.url,
    log,
    timing: options.timing ?? TEST_TIMING,
  });
  const { db, events, deps, app } = service;
  if (!db || !events || !deps || !app) throw new Error('a web process has its app');
  const { server, baseUrl } = await listenOnFreePort(app);
  return {
    baseUrl,
    deps,
    metrics: service.metrics,
    databaseUrl: database.url,
    db,
    boss: service.boss,
    tasks: deps.tasks,
    api: client(baseUrl),
    events,
    /** The worker's wake timer (with `worker: true`). */
    wake: service.worker?.wake ?? null,
    async stop() {
      await events.close(); // streams end before the server closes their connections
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await stopService(service);
      await database.drop();
    },
  };
}

/**
 * A worker process's parts in this process, as `npm run worker` wires them (src/service.ts), on `url`;
 * its wake timer LISTENs on `listenUrl`. Resolves with its pg-boss and the way to stop it.
 */
export async function startWorkerService(
  url: string,
  options: { pollIntervalSeconds?: number; poolSize?: number; listenUrl?: string; log?: Logger } = {},
) {
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: url,
    WORKER_POOL_SIZE: String(options.poolSize ?? 2),
    WORKER_POLL_INTERVAL_SECONDS: String(options.pollIntervalSeconds ?? 2),
    RECONCILE_INTERVAL_SECONDS: '3600',
  });
  const log = options.log ?? createLogger({ LOG_LEVEL: 'silent' });
  const service = await startServiceOf(config, {
    role: 'worker',
    url,
    directUrl: options.listenUrl ?? url,
    log,
    timing: TEST_TIMING,
  });
  const worker = service.worker;
  if (!worker?.wake) throw new Error('a worker with a listen URL has a wake timer');
  return { boss: service.boss, wake: worker.wake, maintained: worker.maintained, stop: () => stopService(service) };
}

/** Serves a Koa app on an ephemeral loopback port, through the service's own HTTP server. */
export async function listenOnFreePort(app: Koa): Promise<{ server: Server; baseUrl: string }> {
  const http = createHttpServer(createLogger({ LOG_LEVEL: 'silent' }));
  http.serve(app);
  const port = await http.listen(0, '127.0.0.1');
  return { server: http.server, baseUrl: `http://127.0.0.1:${port}` };
}

/** Test defaults for `createApp`, for tests that build an app of their own. */
export const appDefaults = {
  rateLimit: { authPerMinute: 100_000, loginFailures: 100_000 },
  trustProxyHops: 0,
  requestTimeoutMs: 5_000,
  draining: () => false,
  metrics: createMetrics('test'),
  watchLimits: { perUser: 10, perProcess: 1000 },
  webhooks: { allowPrivateNetworks: true, allowHttp: true },
} satisfies Partial<AppDeps>;

export type Reply = { status: number; headers: Headers; body: any };

/**
 * A small JSON client: `api.post('/tasks', body, token)`. It throws on any 5xx but a 503, so no test
 * passes over a server error unnoticed; a test that injects one on purpose says `allowServerErrors`.
 */
export function client(baseUrl: string, options: { allowServerErrors?: boolean } = {}) {
  const send = async (method: string, path: string, body?: unknown, token?: string, raw?: RequestInit) => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = token.includes(' ') ? token : `Bearer ${token}`;
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
      ...raw,
    });
    const text = await response.text();
    // No request of the suite may meet a server error; a 503 (database unavailable) is the one exception.
    if (response.status >= 500 && response.status !== 503 && !options.allowServerErrors) {
      throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    }
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null } as Reply;
  };
  return {
    get: (path: string, token?: string) => send('GET', path, undefined, token),
    post: (path: string, body: unknown, token?: string) => send('POST', path, body, token),
    patch: (path: string, body: unknown, token?: string) => send('PATCH', path, body, token),
    delete: (path: string, token?: string) => send('DELETE', path, undefined, token),
    raw: (method: string, path: string, init: RequestInit) => send(method, path, undefined, undefined, init),
  };
}

let counter = 0;
/** Registers and logs in a user; returns the user and the raw token. */
export async function signUp(api: ReturnType<typeof client>, role: 'user' | 'admin' = 'user', adminToken?: string) {
  const email = `user${++counter}-${process.pid}-${Date.now()}@example.com`;
  const registered = await api.post('/register', { email, password: 'password123', role }, adminToken);
  if (registered.status !== 201) throw new Error(`register failed: ${JSON.stringify(registered.body)}`);
  const login = await api.post('/login', { email, password: 'password123' });
  return { user: registered.body as { id: number; email: string; role: string }, token: login.body.token as string };
}

/**
 * Waits until the worker has run past the time `atMs`: a sentinel task due then (or now, once that has
 * passed) has completed, so whatever was due by then has been fetched and worked. The positive fact a
 * "nothing happens" check waits for, instead of a fixed sleep.
 */
export async function workerPassed(api: ReturnType<typeof client>, token: string, atMs: number): Promise<void> {
  const due = atMs - Date.now() > 100 ? { due_at: new Date(atMs).toISOString() } : { delay_seconds: 0 };
  const sentinel = await api.post('/tasks', { title: 'sentinel', ...due }, token);
  if (sentinel.status !== 201) throw new Error(`the sentinel was refused: ${JSON.stringify(sentinel.body)}`);
  const deadline = Date.now() + Math.max(0, atMs - Date.now()) + 15_000;
  while ((await api.get(`/tasks/${sentinel.body.id}`, token)).body.status !== 'completed') {
    if (Date.now() > deadline) throw new Error(`the worker did not pass ${new Date(atMs).toISOString()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
