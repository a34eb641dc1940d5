import path from 'node:path';
import { z } from 'zod';

/** The project folder: the default home of the embedded database and the development secret. */
export const projectDir = path.resolve(import.meta.dirname, '..');

const DURATION = /^(\d+)\s*([smhd]?)$/;
const UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** "3600", "60m", "1h", "7d" → seconds. */
const duration = z
  .string()
  .regex(DURATION, 'must be a whole number of seconds, or a number with s, m, h or d')
  .transform((value) => {
    const [, amount, unit] = DURATION.exec(value) ?? [];
    return Number(amount) * (UNIT_SECONDS[unit ?? ''] ?? 1);
  })
  .pipe(z.number().int().min(1, 'must be at least one second'));

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const postgresUrl = z.url({ protocol: /^postgres(ql)?$/ });
const flag = z.enum(['true', 'false'], { message: 'must be true or false' }).transform((value) => value === 'true');

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(3000),
  /** Where queries go: Postgres itself, or a pooler in front of it (PgBouncer in transaction mode will do). */
  DATABASE_URL: postgresUrl.optional(),
  /**
   * A direct connection (no pooler, or one in session mode), for what needs a session of its own: the
   * LISTENs (event hub, wake timer), the migrations and pg-boss's schema. Unset: DATABASE_URL is direct.
   */
  DATABASE_DIRECT_URL: postgresUrl.optional(),
  /** Heroku's Connection Pooling: when attached, queries go there and DATABASE_URL becomes the direct one. */
  DATABASE_CONNECTION_POOL_URL: postgresUrl.optional(),
  /**
   * TLS to the database, as libpq names it. Carried into DATABASE_URL (unless it has an sslmode of its
   * own), because slonik's driver ignores the variable. Heroku Postgres wants `no-verify`.
   */
  PGSSLMODE: z.enum(['disable', 'no-verify', 'require']).optional(),
  /** Connections of a web process's API pool (pg-boss writes its jobs through it). */
  DATABASE_POOL_SIZE: int(1, 100).default(6),
  /** Connections of a worker process (pg-boss's pool). */
  WORKER_POOL_SIZE: int(2, 100).default(2),
  DATA_DIR: z.string().min(1).default(path.join(projectDir, '.data')),
  EMBEDDED_PG_PORT: int(1, 65535).default(54329),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  JWT_EXPIRES_IN: duration.default(3600),
  BCRYPT_COST: int(4, 15).default(12),
  TASK_COMPLETION_DELAY_SECONDS: int(1, 31_536_000).default(120),
  /** The safety net only: a timer wakes the worker when the next job comes due. */
  WORKER_POLL_INTERVAL_SECONDS: z.coerce.number().min(0.5).max(60).default(2),
  WORKER_BATCH_SIZE: int(1, 1000).default(100),
  RATE_LIMIT_AUTH_PER_MINUTE: int(1, 100_000).default(20),
  RATE_LIMIT_LOGIN_FAILURES: int(1, 100_000).default(10),
  /** How many proxies in front of the service append to X-Forwarded-For: "false" (0), "true" (1) or a count. */
  TRUST_PROXY: z
    .string()
    .regex(/^(true|false|\d{1,2})$/, 'must be true, false, or the number of trusted proxy hops')
    .default('false')
    .transform((value) => (value === 'true' ? 1 : value === 'false' ? 0 : Number(value))),
  REQUEST_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(300).default(5),
  DATABASE_QUERY_TIMEOUT_SECONDS: z.coerce.number().min(1).max(3600).default(15),
  DATABASE_WAIT_SECONDS: int(0, 3600).default(60),
  RECONCILE_INTERVAL_SECONDS: int(1, 86_400).default(60),
  /** A schedule's cron may not fire more often than this. */
  SCHEDULE_MIN_INTERVAL_SECONDS: int(1, 86_400).default(60),
  WATCH_LIMIT_PER_USER: int(1, 10_000).default(10),
  WATCH_LIMIT_PER_PROCESS: int(1, 1_000_000).default(1000),
  /** When set, GET /metrics wants `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** A worker-only process serves /metrics and /healthz on this port when it is set. */
  METRICS_PORT: int(0, 65535).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Webhooks may go to loopback, private and other non-public addresses (development and tests only). */
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: flag.default(false),
  /** Webhooks may use http: URLs in production (elsewhere they always may). */
  WEBHOOK_ALLOW_HTTP: flag.optional(),
  /** Webhook attempts running at once in a worker process. */
  WEBHOOK_DELIVERY_SLOTS: int(2, 1000).default(32),
  /** One user's webhook attempts running at once, across every worker (fewer than the slots: others find one). */
  WEBHOOK_DELIVERY_SLOTS_PER_USER: int(1, 999).default(4),
  /** Attempts running at once to one endpoint, in a worker process. */
  WEBHOOK_DELIVERY_PER_ENDPOINT: int(1, 100).default(2),
  /** How often a worker looks for webhook retries come due (new deliveries wake it at once). */
  WEBHOOK_POLL_INTERVAL_SECONDS: z.coerce.number().min(0.1).max(60).default(2),
  /** An endpoint whose every attempt failed for this long is disabled (Svix's rule: 5 days). */
  WEBHOOK_DISABLE_AFTER: duration.default(5 * 86_400),
  /** Connections of a worker's pool for webhook deliveries (apart from the completions' pool). */
  WEBHOOK_POOL_SIZE: int(1, 100).default(1),
});

export type Config = Readonly<z.output<typeof schema>>;

/** Every variable the configuration reads (docs/deploy.md's table lists each one). */
export const configNames = Object.keys(schema.shape);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the environment once. Empty strings count as unset, so `FOO=` in a .env file means "default".
 * @throws ConfigError with one line per bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const result = schema.safeParse(present);
  const lines = result.success ? [] : result.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
  if (present.NODE_ENV === 'production') {
    if (!present.DATABASE_URL && !present.DATABASE_CONNECTION_POOL_URL)
      lines.push('  DATABASE_URL: is required in production');
    if (!present.JWT_SECRET) lines.push('  JWT_SECRET: is required in production');
  }
  if (result.success && result.data.WEBHOOK_DELIVERY_SLOTS_PER_USER >= result.data.WEBHOOK_DELIVERY_SLOTS) {
    lines.push(
      '  WEBHOOK_DELIVERY_SLOTS_PER_USER: must be less than WEBHOOK_DELIVERY_SLOTS, so others always find one',
    );
  }
  if (!result.success || lines.length > 0) throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  const config = result.data;
  config.WEBHOOK_ALLOW_HTTP ??= config.NODE_ENV !== 'production';
  if (config.DATABASE_CONNECTION_POOL_URL) {
    config.DATABASE_DIRECT_URL ??= config.DATABASE_URL;
    config.DATABASE_URL = config.DATABASE_CONNECTION_POOL_URL;
  }
  config.DATABASE_DIRECT_URL ??= config.DATABASE_URL;
  const sslMode = config.PGSSLMODE;
  if (sslMode) {
    const withSslMode = (value: string) => {
      const url = new URL(value);
      if (!url.searchParams.has('sslmode')) url.searchParams.set('sslmode', sslMode);
      return url.toString();
    };
    if (config.DATABASE_URL) config.DATABASE_URL = withSslMode(config.DATABASE_URL);
    if (config.DATABASE_DIRECT_URL) config.DATABASE_DIRECT_URL = withSslMode(config.DATABASE_DIRECT_URL);
  }
  return Object.freeze(config);
}
