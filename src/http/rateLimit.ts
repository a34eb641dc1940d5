import { createHash } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { DatabasePool } from 'slonik';
import { forgetRateLimitCounters } from '../db/rateLimits.ts';
import { rawQuery } from '../db/rawQuery.ts';
import { normalizeEmail } from '../domain/users/accounts.ts';
import { AppError } from '../errors.ts';

export type RateLimitSettings = {
  /** Requests a minute to POST /register, apart to POST /login, and apart to the password checks, from one client address. */
  readonly authPerMinute: number;
  /** Failed logins for one account from one address in 15 minutes; ten times that from all addresses in an hour. */
  readonly loginFailures: number;
};

export type AuthLimiter = {
  /** Counts a request to `route` from the client's address; sets the RateLimit headers. @throws AppError 429 */
  perAddress(route: 'login' | 'register' | 'password'): Middleware;
  /** @throws AppError 429 while this account is locked for this address or for everyone. */
  assertLoginAllowed(ctx: Context, email: string): Promise<void>;
  loginFailed(ctx: Context, email: string): Promise<void>;
  loginSucceeded(ctx: Context, email: string): Promise<void>;
  /** Forgets the account's failure counts, from every address (its account was deleted). */
  forgetAccount(email: string): Promise<void>;
  /**
   * @throws AppError 429 while this address is locked for API keys (it sent too many that failed). Read in
   * memory, so a good key costs no query: each process learns of a lock at its own next failure from it.
   */
  assertKeysAllowed(ctx: Context): void;
  /** An API key from this address failed (unknown, revoked or expired): counted as a failed login is. */
  keyFailed(ctx: Context): Promise<void>;
};

const FAILURE_WINDOW_SECONDS = 15 * 60;
const ACCOUNT_WINDOW_SECONDS = 60 * 60;

/**
 * Rate limits for the account routes, counted in Postgres (rate-limiter-flexible's Postgres store on the
 * API pool), so that they hold across every web process. Keys name the route, never the raw path, so
 * `/Login` and `/login/` count as `/login`.
 *
 * Password guessing is slowed per account in two ways: a few failures lock the account for one address
 * for 15 minutes (a stranger locks only themselves out), and ten times as many from all addresses lock it
 * for at most an hour (a distributed guesser gets few tries, and the owner is not locked out for long).
 */
export function createAuthLimiter(db: DatabasePool, settings: RateLimitSettings): AuthLimiter {
  const storeClient = {
    // slonik returns bigint columns (`expire`, epoch ms) as BigInt; the library computes with numbers.
    query: async (q: { text: string; values?: unknown[] }) => {
      const result = await rawQuery(db, q.text, q.values);
      const rows = result.rows.map((row) =>
        Object.fromEntries(
          Object.entries(row as object).map(([key, value]) => [key, typeof value === 'bigint' ? Number(value) : value]),
        ),
      );
      return { ...result, rows };
    },
  };
  const store = { storeClient, storeType: 'pool', tableName: 'rate_limits', tableCreated: true };
  const perAddress = new RateLimiterPostgres({
    ...store,
    keyPrefix: 'addr',
    points: settings.authPerMinute,
    duration: 60,
  });
  const accountAtAddress = new RateLimiterPostgres({
    ...store,
    keyPrefix: 'fail',
    points: settings.loginFailures,
    duration: FAILURE_WINDOW_SECONDS,
  });
  const account = new RateLimiterPostgres({
    ...store,
    keyPrefix: 'failall',
    points: settings.loginFailures * 10,
    duration: ACCOUNT_WINDOW_SECONDS,
  });
  const keyFailures = new RateLimiterPostgres({
    ...store,
    keyPrefix: 'failkey',
    points: settings.loginFailures,
    duration: FAILURE_WINDOW_SECONDS,
  });
  const lockedForKeys = new Map<string, number>(); // address → until (ms), as this process last learned it
  // Emails can be long and carry anything: the key holds a digest (the store's keys are at most 255 characters).
  const accountKey = (email: string) => createHash('sha256').update(normalizeEmail(email)).digest('base64url');

  return {
    perAddress(route) {
      return async (ctx, next) => {
        let result: RateLimiterRes;
        try {
          result = await perAddress.consume(`${route}:${ctx.ip}`);
        } catch (rejection) {
          if (!(rejection instanceof RateLimiterRes)) throw rejection;
          result = rejection;
        }
        // IETF draft-ietf-httpapi-ratelimit-headers: the policy, and what is left of it.
        ctx.set('RateLimit-Policy', `"${route}";q=${settings.authPerMinute};w=60`);
        ctx.set('RateLimit', `"${route}";r=${result.remainingPoints};t=${Math.ceil(result.msBeforeNext / 1000)}`);
        if (result.consumedPoints > settings.authPerMinute) throw tooMany(result.msBeforeNext);
        await next();
      };
    },
    async assertLoginAllowed(ctx, email) {
      const key = accountKey(email);
      const [here, everywhere] = await Promise.all([accountAtAddress.get(`${key}:${ctx.ip}`), account.get(key)]);
      for (const [result, limit] of [
        [here, settings.loginFailures],
        [everywhere, settings.loginFailures * 10],
      ] as const) {
        if (result && result.consumedPoints >= limit) {
          throw tooMany(
            result.msBeforeNext,
            'too many failed logins for this account: retry after Retry-After seconds',
          );
        }
      }
    },
    async loginFailed(ctx, email) {
      const key = accountKey(email);
      await Promise.all([accountAtAddress.penalty(`${key}:${ctx.ip}`), account.penalty(key)]);
    },
    async loginSucceeded(ctx, email) {
      await accountAtAddress.delete(`${accountKey(email)}:${ctx.ip}`);
    },
    assertKeysAllowed(ctx) {
      const until = lockedForKeys.get(ctx.ip) ?? 0;
      if (until > Date.now()) {
        throw tooMany(
          until - Date.now(),
          'too many failed API keys from this address: retry after Retry-After seconds',
        );
      }
      lockedForKeys.delete(ctx.ip);
    },
    async keyFailed(ctx) {
      const result = await keyFailures.penalty(ctx.ip);
      if (result.consumedPoints >= settings.loginFailures) {
        if (lockedForKeys.size >= 10_000) lockedForKeys.delete(lockedForKeys.keys().next().value as string);
        lockedForKeys.set(ctx.ip, Date.now() + result.msBeforeNext);
      }
    },
    async forgetAccount(email) {
      const key = accountKey(email);
      await forgetRateLimitCounters(db, `failall:${key}`, `fail:${key}:`);
    },
  };
}

function tooMany(msBeforeNext: number, message?: string): AppError {
  return new AppError(429, 'rate_limited', message ?? 'too many requests: retry after Retry-After seconds', undefined, {
    'Retry-After': String(Math.max(1, Math.ceil(msBeforeNext / 1000))),
  });
}
