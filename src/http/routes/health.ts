import http from 'node:http';
import Router from '@koa/router';
import { isDatabaseReady } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import type { AppDeps } from '../deps.ts';

/** /readyz answers within this, whatever the network does: a load balancer's probe must not hang. */
const READY_TIMEOUT_MS = 1_000;

export function healthRoutes({ db, draining }: Pick<AppDeps, 'db' | 'draining'>): Router {
  const router = new Router({ methods: http.METHODS });
  // The process is up: no dependency is checked, so a database outage does not get the process restarted.
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    if (draining()) throw new AppError(503, 'unavailable', 'shutting down');
    if (!(await isDatabaseReady(db, READY_TIMEOUT_MS))) {
      throw new AppError(503, 'unavailable', 'the database is unreachable');
    }
    ctx.body = { status: 'ready' };
  });
  return router;
}
