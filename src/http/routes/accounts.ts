import http from 'node:http';
import Router from '@koa/router';
import { z } from 'zod';
import { type AccountSettings, login, MAX_PASSWORD_BYTES, register } from '../../domain/users/accounts.ts';
import { findUserById } from '../../domain/users/queries.ts';
import { roles } from '../../domain/users/user.ts';
import { AppError, unauthorized } from '../../errors.ts';
import { actorOf, optionalActor, requireAuth } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import type { AuthLimiter } from '../rateLimit.ts';
import { validate } from '../validate.ts';

const email = z
  .string()
  .trim()
  .max(254, 'must be at most 254 characters')
  .pipe(z.email({ message: 'must be an email address' }));

const password = z
  .string()
  .min(8, 'must be at least 8 characters')
  // bcrypt reads at most 72 bytes; longer is refused rather than silently cut.
  .refine(
    (value) => Buffer.byteLength(value, 'utf8') <= MAX_PASSWORD_BYTES,
    `must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8`,
  );

const registerBody = z.strictObject({ email, password, role: z.enum(roles).default('user') });
const loginBody = z.strictObject({ email: z.string().min(1).max(1000), password: z.string().min(1).max(1000) });

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
