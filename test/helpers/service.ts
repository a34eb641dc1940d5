import type { Server } from 'node:http';
import type Koa from 'koa';
import { loadConfig } from '../../src/config.ts';
import { createDb } from '../../src/db/pool.ts';
import type { DestinationSettings } from '../../src/delivery/send.ts';
import type { DeliverySettings } from '../../src/delivery/worker.ts';
import { createApp } from '../../src/http/app.ts';
import type { AppDeps } from '../../src/http/deps.ts';
import { startEventHub } from '../../src/http/eventHub.ts';
import { createHttpServer } from '../../src/http/server.ts';
import { startBoss } from '../../src/jobs/queue.ts';
import { startWorker, workerSettings } from '../../src/jobs/worker.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createTestDatabase } from './db.ts';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';

export type TestService = Awaited<ReturnType<typeof startService>>;

/**
 * The real service in this process, on a database of its own and an ephemeral port: HTTP API, pg-boss,
 * and (with `worker: true`) the completion worker. bcrypt runs at cost 4 to keep the suite fast.
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
    /** Where the service logs (silent by default). */
    log?: Logger;
    /** The worker's delivery settings that a test sets (slots, shares, the 5-day rule, polls). */
    deliveries?: Partial<DeliverySettings>;
  } = {},
) {
  const webhookDestinations = options.webhooks ?? { allowPrivateNetworks: true, allowHttp: true };
  const database = options.databaseUrl
    ? { url: options.databaseUrl, drop: async () => {} }
    : await createTestDatabase();
  const log = options.log ?? createLogger({ LOG_LEVEL: (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent' });
  const db = await createDb(database.url, { maximumPoolSize: 5, queryTimeoutMs: 15_000 });
  const metrics = createMetrics('test');
  // As in production: a web process's pg-boss writes through the API pool; a worker's has a pool of its own.
  const boss = options.worker
    ? await startBoss({ url: database.url, log, role: 'all', poolSize: 5 })
    : await startBoss({ url: database.url, log, role: 'web', poolSize: 0, api: db });
  const worker = options.worker
    ? await startWorker(
        boss,
        {
          pollIntervalSeconds: options.pollIntervalSeconds ?? 2,
          batchSize: 50,
          reconcileIntervalSeconds: 3600,
          listenUrl: database.url,
          deliveries: {
            ...workerSettings(loadConfig({}), { databaseUrl: database.url }).deliveries,
            ...webhookDestinations,
            pollIntervalSeconds: 1,
            ...options.deliveries,
          },
        },
        log,
        metrics,
      )
    : null;
  const events = await startEventHub({ url: database.url, db, log });
  const accounts = { secret: TEST_SECRET, expiresInSeconds: options.expiresIn ?? 3600, bcryptCost: 4 };
  const tasks = { db, boss, delaySeconds: options.delaySeconds ?? 120 };
  const deps: AppDeps = {
    db,
    log,
    accounts,
    tasks,
    // The suite registers and logs in far more often than a person would: high limits unless a test sets them.
    rateLimit: { authPerMinute: options.authPerMinute ?? 100_000, loginFailures: options.loginFailures ?? 100_000 },
    trustProxyHops: options.trustProxyHops ?? 0,
    requestTimeoutMs: 5_000,
    draining: () => false,
    metrics,
    metricsToken: options.metricsToken,
    events,
    watchLimits: { perUser: options.watchPerUser ?? 10, perProcess: options.watchPerProcess ?? 1000 },
    webhooks: webhookDestinations,
  };
  const { server, baseUrl } = await listenOnFreePort(createApp(deps));
  return {
    baseUrl,
    deps,
    metrics,
    databaseUrl: database.url,
    db,
    boss,
    tasks,
    api: client(baseUrl),
    events,
    async stop() {
      await events.close();
      await worker?.stop();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await boss.stop({ graceful: false });
      await db.end();
      await database.drop();
    },
  };
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
