import http from 'node:http';
import Router from '@koa/router';
import { queueOverview } from '../../domain/tasks/overview.ts';
import { assertAdmin } from '../../domain/users/administration.ts';
import { type Auth, actorOf } from '../auth.ts';
import type { AppDeps } from '../deps.ts';

/** GET /queue: the queue at a glance, for admins (the web app's overview; no Prometheus parser needed). */
export function queueRoutes({ db, auth }: Pick<AppDeps, 'db'> & { auth: Auth }): Router {
  const router = new Router({ methods: http.METHODS });
  router.get('/queue', auth('tasks:read'), async (ctx) => {
    assertAdmin(actorOf(ctx));
    ctx.body = await queueOverview(db);
  });
  return router;
}
