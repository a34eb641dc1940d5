import type { Context, Middleware } from 'koa';
import type { DatabasePool } from 'slonik';
import { API_KEY_PREFIX, hashApiKey, isWellFormedApiKey, type Scope } from '../domain/apiKeys/apiKey.ts';
import { markKeyUsed } from '../domain/apiKeys/keys.ts';
import { type TokenSettings, verifyToken } from '../domain/users/tokens.ts';
import type { Actor } from '../domain/users/user.ts';
import { AppError, unauthorized } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { EventHub } from './eventHub.ts';
import type { AuthLimiter } from './rateLimit.ts';

/**
 * What a route lets in: a scope (a login token, or an API key with that scope); `any` (a login token or
 * any key); `login` (a login token only: the account routes and /users, which a key must never reach).
 */
export type Access = Scope | 'any' | 'login';

/** The credential from `Authorization`, with or without the `Bearer ` prefix; null when there is none. */
export function tokenOf(ctx: Context): string | null {
  const header = ctx.get('Authorization').trim();
  if (header === '') return null;
  return header.replace(/^bearer\s+/i, '').trim();
}

export type Auth = {
  /** A middleware that requires a credential `access` lets in, and puts the actor on `ctx.state.actor`. */
  (access: Access): Middleware & { readonly access: Access };
  /**
   * The actor of the request's credential, or null when it carries none.
   * @throws AppError 401 for a bad, expired or revoked credential, or one whose account no longer exists;
   * 403 `insufficient_scope` for a key without the scope.
   */
  optional(ctx: Context, access: Access): Promise<Actor | null>;
};

/** A key's `last_used_at` is written at most this often (it is kept to the minute). */
const MARK_USED_EVERY_MS = 60_000;
/** Keys whose hash, or whose last use, a process remembers at most (the oldest goes first). */
const MAX_REMEMBERED = 10_000;

/**
 * Authentication, built once for every router. A credential is only as good as its user: the account is
 * read on every request (one indexed read, or the process's cache of it, which every change to the
 * account empties at once: actorCache.ts), so a deleted user's token or key is refused, a changed role
 * applies at once, and a token signed before the user's last logout or password change is refused.
 *
 * An API key (`tm_...`) is told from a JWT by its prefix. Its shape and checksum are checked first, with
 * no query (a malformed key is refused, and not counted: a guess with a valid checksum is); then its hash
 * is looked up (cached like the user; a revocation empties it in every process), then its user. A failed
 * key counts against the client's address as a failed login does. No write per request: `last_used_at`
 * at most once a minute per key, after the answer, off the request's path.
 */
export function createAuth(deps: {
  db: DatabasePool;
  accounts: TokenSettings;
  events: Pick<EventHub, 'actors' | 'keys'>;
  limiter: AuthLimiter;
  log: Logger;
}): Auth {
  const { db, accounts, events, limiter, log } = deps;
  const markedAt = new Map<number, number>();
  // Each well-formed key's hash, by the key's text, as verified tokens are kept by theirs (tokens.ts): a
  // script sends the same key with every request, and its checksum and SHA-256 need working out once.
  const hashes = new Map<string, Buffer>();

  const keyActor = async (ctx: Context, key: string, access: Access): Promise<Actor> => {
    if (access === 'login') {
      throw unauthorized('this route needs a login token (POST /login): an API key cannot reach it');
    }
    let hash = hashes.get(key);
    if (!hash) {
      if (!isWellFormedApiKey(key)) throw unauthorized('malformed API key');
      hash = hashApiKey(key);
      if (hashes.size >= MAX_REMEMBERED) hashes.delete(hashes.keys().next().value as string);
      hashes.set(key, hash);
    }
    limiter.assertKeysAllowed(ctx);
    const credential = await events.keys.read(db, hash);
    if (!credential || (credential.expiresAt !== null && credential.expiresAt <= Date.now())) {
      await limiter.keyFailed(ctx);
      throw unauthorized(credential ? 'API key expired' : 'unknown or revoked API key');
    }
    const user = await events.actors.read(db, credential.userId);
    if (!user) throw unauthorized('the account of this API key no longer exists');
    if (access !== 'any' && !credential.scopes.includes(access)) {
      throw new AppError(403, 'insufficient_scope', `this API key lacks the scope this route needs: ${access}`);
    }
    ctx.state.apiKeyId = credential.id;
    ctx.state.tokenExpiresAt = credential.expiresAt ?? Number.POSITIVE_INFINITY;
    if (Date.now() - (markedAt.get(credential.id) ?? 0) >= MARK_USED_EVERY_MS) {
      markedAt.set(credential.id, Date.now());
      if (markedAt.size > MAX_REMEMBERED) markedAt.delete(markedAt.keys().next().value as number);
      ctx.res.once('finish', () => {
        markKeyUsed(db, credential.id).catch((error: unknown) =>
          log.warn({ err: error, key: credential.id }, "an API key's last use could not be written"),
        );
      });
    }
    return { id: user.id, role: user.role };
  };

  const optional = async (ctx: Context, access: Access): Promise<Actor | null> => {
    const credential = tokenOf(ctx);
    if (credential === null) return null;
    if (credential.startsWith(API_KEY_PREFIX)) return keyActor(ctx, credential, access);
    const claimed = verifyToken(credential, accounts);
    ctx.state.tokenExpiresAt = claimed.expiresAt;
    const user = await events.actors.read(db, claimed.id);
    if (!user) throw unauthorized('the account of this token no longer exists');
    if (user.token_generation !== claimed.generation) {
      throw unauthorized('this token was revoked (logout or password change): log in again');
    }
    return { id: user.id, role: user.role };
  };

  const auth = (access: Access) =>
    Object.assign(
      (async (ctx, next) => {
        const actor = await optional(ctx, access);
        if (!actor) throw unauthorized('missing Authorization header: send the token from POST /login, or an API key');
        ctx.state.actor = actor;
        await next();
      }) satisfies Middleware,
      { access },
    );
  return Object.assign(auth, { optional });
}

/** When the request's credential expires (ms since the epoch; a key may never): what it opened ends then. */
export function tokenExpiresAt(ctx: Context): number {
  const at = ctx.state.tokenExpiresAt as number | undefined;
  if (at === undefined) throw unauthorized('authentication required');
  return at;
}

/** The API key the request came with, if any (its id): a stream it opened ends when it is revoked. */
export const apiKeyOf = (ctx: Context): number | undefined => ctx.state.apiKeyId as number | undefined;

/**
 * The actor that the auth middleware put on the request.
 * @throws AppError 401 when none did: a route wired without it fails closed, never open.
 */
export function actorOf(ctx: Context): Actor {
  const actor = ctx.state.actor as Actor | undefined;
  if (!actor) throw unauthorized('authentication required');
  return actor;
}
