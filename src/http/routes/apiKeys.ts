import http from 'node:http';
import Router from '@koa/router';
import type { Context } from 'koa';
import { createApiKey, listApiKeys, revokeApiKey } from '../../domain/apiKeys/keys.ts';
import { assertAdmin, getUser } from '../../domain/users/administration.ts';
import { notFound } from '../../errors.ts';
import { type Auth, actorOf } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import type { AuthLimiter } from '../rateLimit.ts';
import { createApiKeyBody } from '../schemas.ts';
import { validate } from '../validate.ts';
import { pathId } from './urls.ts';

/** A path's key id: a positive integer, or the key is not found. */
function keyId(ctx: Context): number {
  const id = ctx.params?.key_id ?? '';
  if (!/^[1-9]\d{0,14}$/.test(id)) throw notFound('API key');
  return Number(id);
}

/**
 * API keys: a user's own (`/me/api-keys`), and any user's for admins (`/users/:id/api-keys`). Each route
 * takes a login token only: a key can neither make nor revoke keys.
 */
export function apiKeyRoutes({
  db,
  events,
  limiter,
  auth: authFor,
}: Pick<AppDeps, 'db' | 'events'> & { limiter: AuthLimiter; auth: Auth }): Router {
  const router = new Router({ methods: http.METHODS });
  const auth = authFor('login');

  // Creating a key counts like a password check (it gives out a credential).
  router.post('/me/api-keys', limiter.perAddress('password'), auth, async (ctx) => {
    const { name, scopes, expires_in_days } = validate(createApiKeyBody, ctx.request.body ?? {});
    const created = await createApiKey(db, actorOf(ctx).id, { name, scopes, expiresInDays: expires_in_days });
    ctx.status = 201;
    ctx.set('Location', `/me/api-keys/${created.id}`);
    ctx.set('Cache-Control', 'no-store'); // the key is in the body, and only here
    ctx.body = created;
  });

  router.get('/me/api-keys', auth, async (ctx) => {
    ctx.body = await listApiKeys(db, actorOf(ctx).id);
  });

  router.delete('/me/api-keys/:key_id', auth, async (ctx) => {
    const id = keyId(ctx);
    await revokeApiKey(db, actorOf(ctx).id, id);
    events.keys.forget([id]); // this process at once; the others by the delete's NOTIFY
    ctx.status = 204;
  });

  router.get('/users/:id/api-keys', auth, async (ctx) => {
    const user = await getUser(db, actorOf(ctx), pathId(ctx, 'user')); // 403 for non-admins, 404 for no one
    ctx.body = await listApiKeys(db, user.id);
  });

  router.delete('/users/:id/api-keys/:key_id', auth, async (ctx) => {
    assertAdmin(actorOf(ctx));
    const id = keyId(ctx);
    await revokeApiKey(db, pathId(ctx, 'user'), id);
    events.keys.forget([id]);
    ctx.status = 204;
  });

  return router;
}
