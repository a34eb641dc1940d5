import Router from '@koa/router';
import { isDatabaseReady } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import type { AppDeps } from '../app.ts';

export function healthRoutes({ db }: Pick<AppDeps, 'db'>): Router {
  const router = new Router();
  // The process is up: no dependency is checked, so a database outage does not get the process restarted.
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    if (!(await isDatabaseReady(db))) throw new AppError(503, 'unavailable', 'the database is unreachable');
    ctx.body = { status: 'ready' };
  });
  return router;
}
