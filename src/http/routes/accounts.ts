import Router from '@koa/router';
import ratelimit from 'koa-ratelimit';
import { z } from 'zod';
import { type AccountSettings, login, MAX_PASSWORD_BYTES, register } from '../../domain/users/accounts.ts';
import { findUserById } from '../../domain/users/queries.ts';
import { roles } from '../../domain/users/user.ts';
import { unauthorized } from '../../errors.ts';
import type { AppDeps } from '../app.ts';
import { actorOf, optionalActor, requireAuth } from '../auth.ts';
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
const loginBody = z.strictObject({ email: z.string().min(1), password: z.string().min(1) });

export function accountRoutes({ db, accounts, rateLimit }: Pick<AppDeps, 'db' | 'accounts' | 'rateLimit'>): Router {
  const router = new Router();
  const settings: AccountSettings = accounts;
  // Password guessing and account spraying are bounded per client address. The counts live in this
  // process's memory: with N web processes a client gets up to N times the limit.
  const limited = ratelimit({
    driver: 'memory',
    db: new Map(),
    duration: 60_000,
    max: rateLimit.authPerMinute,
    id: (ctx) => `${ctx.ip} ${ctx.path}`,
    throw: true,
  });

  router.post('/register', limited, async (ctx) => {
    const input = validate(registerBody, ctx.request.body ?? {});
    // A token is optional here; when present it must be valid (it may grant the admin role).
    const actor = optionalActor(ctx, settings);
    ctx.body = await register(db, settings, input, actor);
    ctx.status = 201;
  });

  router.post('/login', limited, async (ctx) => {
    ctx.body = await login(db, settings, validate(loginBody, ctx.request.body ?? {}));
  });

  router.get('/me', requireAuth(settings), async (ctx) => {
    const user = await findUserById(db, actorOf(ctx).id);
    if (!user) throw unauthorized('the account of this token no longer exists');
    ctx.body = user;
  });

  return router;
}
