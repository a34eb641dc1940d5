import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { createDb } from '../../src/db/pool.ts';
import { createApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import { startBoss } from '../../src/queue.ts';
import { startWorker } from '../../src/worker.ts';
import { createTestDatabase } from './db.ts';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';

export type TestService = Awaited<ReturnType<typeof startService>>;

/**
 * The real service in this process, on a database of its own and an ephemeral port: HTTP API, pg-boss,
 * and (with `worker: true`) the completion worker. bcrypt runs at cost 4 to keep the suite fast.
 */
export async function startService(
  options: { delaySeconds?: number; worker?: boolean; expiresIn?: number; authPerMinute?: number } = {},
) {
  const database = await createTestDatabase();
  const log = createLogger({ LOG_LEVEL: 'silent' });
  const db = await createDb(database.url, { maximumPoolSize: 5 });
  const boss = await startBoss({ url: database.url, log, role: options.worker ? 'all' : 'web', poolSize: 5 });
  if (options.worker) await startWorker(boss, { pollIntervalSeconds: 0.5, batchSize: 50 }, log);
  const accounts = { secret: TEST_SECRET, expiresInSeconds: options.expiresIn ?? 3600, bcryptCost: 4 };
  const tasks = { db, boss, delaySeconds: options.delaySeconds ?? 120 };
  // The suite registers and logs in far more often than a person would: a high limit unless a test sets one.
  const rateLimit = { authPerMinute: options.authPerMinute ?? 100_000, trustProxy: false };
  const { server, baseUrl } = await listenOnFreePort(createApp({ db, log, accounts, tasks, rateLimit }));
  return {
    baseUrl,
    databaseUrl: database.url,
    db,
    boss,
    tasks,
    api: client(baseUrl),
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await boss.stop({ graceful: false });
      await db.end();
      await database.drop();
    },
  };
}

/** Serves a Koa app on an ephemeral loopback port. */
export async function listenOnFreePort(app: Koa): Promise<{ server: Server; baseUrl: string }> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { server, baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export type Reply = { status: number; headers: Headers; body: any };

/** A small JSON client: `api.post('/tasks', body, token)`. */
export function client(baseUrl: string) {
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
