import type { Context, Middleware } from 'koa';
import type { TokenSettings } from '../domain/users/tokens.ts';
import { verifyToken } from '../domain/users/tokens.ts';
import type { Actor } from '../domain/users/user.ts';
import { unauthorized } from '../errors.ts';

/** The token from `Authorization`, with or without the `Bearer ` prefix; null when there is none. */
export function tokenOf(ctx: Context): string | null {
  const header = ctx.get('Authorization').trim();
  if (header === '') return null;
  return header.replace(/^bearer\s+/i, '').trim();
}

/** The verified actor, or null when the request carries no token. @throws AppError 401 for a bad one. */
export function optionalActor(ctx: Context, settings: TokenSettings): Actor | null {
  const token = tokenOf(ctx);
  return token === null ? null : verifyToken(token, settings);
}

/** Requires a valid token and puts the actor on `ctx.state.actor`. */
export function requireAuth(settings: TokenSettings): Middleware {
  return async (ctx, next) => {
    const actor = optionalActor(ctx, settings);
    if (!actor) throw unauthorized('missing Authorization header: send the token from POST /login');
    ctx.state.actor = actor;
    await next();
  };
}

export const actorOf = (ctx: Context): Actor => ctx.state.actor as Actor;
