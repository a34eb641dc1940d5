import http from 'node:http';
import Router from '@koa/router';
import type { Context } from 'koa';
import {
  type AccountSettings,
  assertPassword,
  changePassword,
  login,
  logout,
  register,
} from '../../domain/users/accounts.ts';
import { deleteUser } from '../../domain/users/administration.ts';
import { findUserById } from '../../domain/users/queries.ts';
import { AppError, unauthorized } from '../../errors.ts';
import { type Auth, actorOf } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import type { AuthLimiter } from '../rateLimit.ts';
import { changePasswordBody, deleteAccountBody, loginBody, registerBody } from '../schemas.ts';
import { validate } from '../validate.ts';

export function accountRoutes({
  db,
  accounts,
  tasks,
  events,
  limiter,
  auth: authFor,
}: Pick<AppDeps, 'db' | 'accounts' | 'tasks' | 'events'> & { limiter: AuthLimiter; auth: Auth }): Router {
  const router = new Router({ methods: http.METHODS });
  const settings: AccountSettings = accounts;
  // The account's own routes take a login token only: an API key cannot change or end its account.
  const auth = authFor('login');

  /**
   * Checks the actor's password as a login would: refused while the account is locked by failures, and a
   * wrong one counts as a failed login of the account. Resolves with the account.
   */
  const checkPassword = async (ctx: Context, password: string) => {
    const actor = actorOf(ctx);
    const user = await findUserById(db, actor.id);
    if (!user) throw unauthorized('the account of this token no longer exists');
    await limiter.assertLoginAllowed(ctx, user.email);
    try {
      await assertPassword(db, actor, password);
    } catch (error) {
      if (error instanceof AppError && error.status === 401) await limiter.loginFailed(ctx, user.email);
      throw error;
    }
    return user;
  };

  router.post('/register', limiter.perAddress('register'), async (ctx) => {
    const input = validate(registerBody, ctx.request.body ?? {});
    // A token is optional here; when present it must be valid (it may grant the admin role).
    const actor = await authFor.optional(ctx, 'login');
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

  router.get('/me', authFor('any'), async (ctx) => {
    const user = await findUserById(db, actorOf(ctx).id);
    if (!user) throw unauthorized('the account of this token no longer exists');
    ctx.body = user;
  });

  router.post('/me/password', limiter.perAddress('password'), auth, async (ctx) => {
    const input = validate(changePasswordBody, ctx.request.body ?? {});
    await checkPassword(ctx, input.current_password);
    await changePassword(db, settings, actorOf(ctx), input);
    // This process's next request sees it at once; the others when the users trigger's NOTIFY reaches them.
    events.actors.forget([actorOf(ctx).id]);
    ctx.status = 204;
  });

  router.post('/logout', auth, async (ctx) => {
    await logout(db, actorOf(ctx));
    events.actors.forget([actorOf(ctx).id]);
    ctx.status = 204;
  });

  router.delete('/me', limiter.perAddress('password'), auth, async (ctx) => {
    const input = validate(deleteAccountBody, ctx.request.body ?? {});
    const user = await checkPassword(ctx, input.password);
    await deleteUser(tasks, actorOf(ctx), user.id);
    events.actors.forget([user.id]);
    await limiter.forgetAccount(user.email);
    ctx.status = 204;
  });

  return router;
}
