import type { Context, Middleware } from 'koa';
import type { DatabasePool } from 'slonik';
import { type TokenSettings, verifyToken } from '../domain/users/tokens.ts';
import type { Actor } from '../domain/users/user.ts';
import { unauthorized } from '../errors.ts';
import type { ActorCache } from './actorCache.ts';

/** The token from `Authorization`, with or without the `Bearer ` prefix; null when there is none. */
export function tokenOf(ctx: Context): string | null {
  const header = ctx.get('Authorization').trim();
  if (header === '') return null;
  return header.replace(/^bearer\s+/i, '').trim();
}

/**
 * The actor of the request's token, or null when it carries none. A token is only as good as its user:
 * the account is read on every request (one indexed read, or the process's cache of it, which every
 * change to the account empties at once: actorCache.ts), so a deleted user's token is refused, a changed
 * role applies at once whatever the token's own `role` claim says, and a token signed before the user's
 * last logout or password change (an older token generation) is refused.
 * @throws AppError 401 for a bad, expired or revoked token, or one whose account no longer exists.
 */
export async function optionalActor(
  ctx: Context,
  db: DatabasePool,
  settings: TokenSettings,
  actors: ActorCache,
): Promise<Actor | null> {
  const token = tokenOf(ctx);
  if (token === null) return null;
  const claimed = verifyToken(token, settings);
  ctx.state.tokenExpiresAt = claimed.expiresAt;
  const user = await actors.read(db, claimed.id);
  if (!user) throw unauthorized('the account of this token no longer exists');
  if (user.token_generation !== claimed.generation) {
    throw unauthorized('this token was revoked (logout or password change): log in again');
  }
  return { id: user.id, role: user.role };
}

/** Requires a valid token and puts the actor on `ctx.state.actor`. */
export function requireAuth(db: DatabasePool, settings: TokenSettings, actors: ActorCache): Middleware {
  return async (ctx, next) => {
    const actor = await optionalActor(ctx, db, settings, actors);
    if (!actor) throw unauthorized('missing Authorization header: send the token from POST /login');
    ctx.state.actor = actor;
    await next();
  };
}

/** When the request's token expires (ms since the epoch): a wait or a stream it opened ends then. */
export function tokenExpiresAt(ctx: Context): number {
  const at = ctx.state.tokenExpiresAt as number | undefined;
  if (at === undefined) throw unauthorized('authentication required');
  return at;
}

/**
 * The actor that `requireAuth` put on the request.
 * @throws AppError 401 when none did: a route wired without `requireAuth` fails closed, never open.
 */
export function actorOf(ctx: Context): Actor {
  const actor = ctx.state.actor as Actor | undefined;
  if (!actor) throw unauthorized('authentication required');
  return actor;
}
