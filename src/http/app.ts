import { randomUUID } from 'node:crypto';
import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import helmet from 'koa-helmet';
import type { DatabasePool } from 'slonik';
import type { TaskDeps } from '../domain/tasks/tasks.ts';
import type { AccountSettings } from '../domain/users/accounts.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { errorMiddleware } from './errorMiddleware.ts';
import { accountRoutes } from './routes/accounts.ts';
import { healthRoutes } from './routes/health.ts';
import { taskRoutes } from './routes/tasks.ts';

export type AppDeps = {
  readonly db: DatabasePool;
  readonly log: Logger;
  readonly accounts: AccountSettings;
  readonly tasks: TaskDeps;
  /** POST /register and POST /login per client address and minute; `trustProxy` reads X-Forwarded-For. */
  readonly rateLimit: { readonly authPerMinute: number; readonly trustProxy: boolean };
};

const BODY_LIMIT = '64kb';
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The HTTP API as a Koa app, apart from `listen`, so tests need no fixed port. */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.proxy = deps.rateLimit.trustProxy;
  app.silent = true; // errors are logged by errorMiddleware, with the request id

  app.use(async (ctx, next) => {
    const incoming = ctx.get('X-Request-Id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.set('X-Request-Id', requestId);
    ctx.state.log = deps.log.child({ requestId });
    const started = performance.now();
    try {
      await next();
    } finally {
      ctx.state.log.info(
        { method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started) },
        'request',
      );
    }
  });
  app.use(errorMiddleware(deps.log));
  // Standard security headers (nosniff, HSTS, a deny-all CSP ...) on every response, errors included.
  app.use(helmet());
  app.use(async (ctx, next) => {
    // A body on POST or PATCH must be JSON; an empty body is left to validation.
    const hasBody = Number(ctx.get('Content-Length') || 0) > 0 || ctx.get('Transfer-Encoding') !== '';
    if ((ctx.method === 'POST' || ctx.method === 'PATCH') && hasBody && !ctx.is('application/json')) {
      throw new AppError(415, 'unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
    }
    await next();
  });
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: BODY_LIMIT, jsonStrict: true }));

  for (const router of [healthRoutes(deps), accountRoutes(deps), taskRoutes(deps)]) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: false }));
  }
  return app;
}
