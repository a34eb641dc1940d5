import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import Router from '@koa/router';
import { unauthorized } from '../../errors.ts';
import { tokenOf } from '../auth.ts';
import type { AppDeps } from '../deps.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** GET /metrics in Prometheus' text format; with `metricsToken`, only for `Authorization: Bearer <it>`. */
export function metricsRoutes({ metrics, metricsToken }: Pick<AppDeps, 'metrics' | 'metricsToken'>): Router {
  const router = new Router({ methods: http.METHODS });
  router.get('/metrics', async (ctx) => {
    if (metricsToken !== undefined) {
      const given = tokenOf(ctx);
      // Digests have one length, so the comparison takes the same time whatever was sent.
      if (given === null || !timingSafeEqual(digest(given), digest(metricsToken))) {
        throw unauthorized('/metrics needs Authorization: Bearer <METRICS_TOKEN>');
      }
    }
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}
