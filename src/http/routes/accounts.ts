import http from 'node:http';
import Router from '@koa/router';
import { type AccountSettings, login, register } from '../../domain/users/accounts.ts';
import { findUserById } from '../../domain/users/queries.ts';
import { AppError, unauthorized } from '../../errors.ts';
import { actorOf, optionalActor, requireAuth } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import type { AuthLimiter } from '../rateLimit.ts';
import { loginBody, registerBody } from '../schemas.ts';
import { validate } from '../validate.ts';

export function accountRoutes({
  db,
  accounts,
  limiter,
}: Pick<AppDeps, 'db' | 'accounts'> & { limiter: AuthLimiter }): Router {
  const router = new Router({ methods: http.METHODS });
  const settings: AccountSettings = accounts;

  router.post('/register', limiter.perAddress('register'), async (ctx) => {
    const input = validate(registerBody, ctx.request.body ?? {});
    // A token is optional here; when present it must be valid (it may grant the admin role).
    const actor = await optionalActor(ctx, db, settings);
    ctx.body = await register(db, settings, input, actor);
    ctx.status = 201;
  });

  router.post('/login', limiter.perAddress('login'), async (ctx) => {
    const input = validate(loginBody, ctx.request.body ?? {});
    await limiter.assertLoginAllowed(ctx, input.email);
    try {
      ctx.body = await login(db, settings, input);
    } catch (error) {
      if (error instanceof AppError && error.status === 401) await limiter.loginFailed(ctx, input.email);
      throw error;
    }
    await limiter.loginSucceeded(ctx, input.email);
  });

  router.get('/me', requireAuth(db, settings), async (ctx) => {
    const user = await findUserById(db, actorOf(ctx).id);
    if (!user) throw unauthorized('the account of this token no longer exists');
    ctx.body = user;
  });

  return router;
}
