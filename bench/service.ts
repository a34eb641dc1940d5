import { type Config, loadConfig } from '../src/config.ts';
import { signToken } from '../src/domain/users/tokens.ts';
import { createHttpServer } from '../src/http/server.ts';
import type { Logger } from '../src/log.ts';
import { startService, stopService } from '../src/service.ts';

const SECRET = 'bench-secret-that-is-at-least-32-characters';

/**
 * The service as `npm start` wires it (API pool, events listener, pg-boss with a worker), in this process
 * on an ephemeral port. Rate limits and watch caps are lifted: the benchmark is the only client.
 */
export async function startBenchService(url: string, config: Config, log: Logger, options: { delaySeconds: number }) {
  // The machine's configuration, with the limits lifted and the benchmark's delay (src/service.ts wires it).
  const wired = loadConfig({
    ...Object.fromEntries(
      Object.entries(config).map(([name, value]) => [name, value === undefined ? '' : String(value)]),
    ),
    NODE_ENV: 'test',
    DATABASE_URL: url,
    DATABASE_DIRECT_URL: url,
    JWT_SECRET: SECRET,
    BCRYPT_COST: '4',
    TASK_COMPLETION_DELAY_SECONDS: String(options.delaySeconds),
    RATE_LIMIT_AUTH_PER_MINUTE: '100000',
    RATE_LIMIT_LOGIN_FAILURES: '100000',
    REQUEST_TIMEOUT_SECONDS: '30',
    WATCH_LIMIT_PER_USER: '10000',
    WATCH_LIMIT_PER_PROCESS: '1000000',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    WEBHOOK_ALLOW_HTTP: 'true',
  });
  const http = createHttpServer(log);
  const service = await startService(wired, { role: 'all', url, directUrl: url, log, draining: http.draining });
  if (!service.app || !service.db) throw new Error('an all-in-one process has its app');
  http.serve(service.app);
  const { db, boss } = service;
  const base = `http://127.0.0.1:${await http.listen(0, '127.0.0.1')}`;
  const registered = await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'password123' }),
  });
  const user = (await registered.json()) as { id: number };
  const token = signToken({ id: user.id, role: 'user' }, { secret: SECRET, expiresInSeconds: 3600 });
  return {
    base,
    db,
    boss,
    userId: user.id,
    authorization: `Bearer ${token}`,
    async stop() {
      await service.events?.close();
      await http.drain(0);
      await stopService(service);
    },
  };
}
