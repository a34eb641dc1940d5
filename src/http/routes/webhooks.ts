import http from 'node:http';
import Router from '@koa/router';
import type { Context } from 'koa';
import { checkDestination, DestinationRefused } from '../../delivery/send.ts';
import { listDeliveryPage, retryDelivery } from '../../domain/webhooks/deliveries.ts';
import {
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  listEndpoints,
  rotateSecret,
  updateEndpoint,
} from '../../domain/webhooks/endpoints.ts';
import { AppError, notFound } from '../../errors.ts';
import { type Auth, actorOf } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import { createWebhookBody, listDeliveriesQuery, updateWebhookBody } from '../schemas.ts';
import { validate } from '../validate.ts';
import { nextLink, pathId } from './urls.ts';

/** A delivery id is a UUID; anything else names no delivery. */
function deliveryId(ctx: Context): string {
  const id = ctx.params?.delivery_id ?? '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw notFound('delivery');
  return id.toLowerCase();
}

/** The caller's webhook endpoints and their deliveries log: someone else's are a 404, as tasks are. */
export function webhookRoutes(deps: Pick<AppDeps, 'db' | 'tasks' | 'webhooks'> & { auth: Auth }): Router {
  const { db, webhooks } = deps;
  const router = new Router({ prefix: '/webhooks', methods: http.METHODS });
  const read = deps.auth('webhooks:read');
  const write = deps.auth('webhooks:write');

  /**
   * The URL rules, and where its name resolves now (each attempt checks again). Resolves with the URL as
   * it will be called (the WHATWG parser's `href`): that is what is stored and shown.
   * @throws AppError 400
   */
  const destination = async (url: string): Promise<string> => {
    try {
      return (await checkDestination(url, webhooks)).href;
    } catch (error) {
      if (!(error instanceof DestinationRefused)) throw error;
      throw new AppError(400, 'validation_failed', 'the request has invalid fields', [
        { field: 'url', message: error.message },
      ]);
    }
  };

  router.post('/', write, async (ctx) => {
    const input = validate(createWebhookBody, ctx.request.body ?? {});
    const url = await destination(input.url);
    const endpoint = await createEndpoint(db, actorOf(ctx), { ...input, url });
    ctx.status = 201;
    ctx.set('Location', `/webhooks/${endpoint.id}`);
    ctx.body = endpoint;
  });

  router.get('/', read, async (ctx) => {
    ctx.body = await listEndpoints(db, actorOf(ctx));
  });

  router.get('/:id', read, async (ctx) => {
    ctx.body = await getEndpoint(db, actorOf(ctx), pathId(ctx, 'webhook endpoint'));
  });

  router.patch('/:id', write, async (ctx) => {
    const id = pathId(ctx, 'webhook endpoint');
    const change = validate(updateWebhookBody, ctx.request.body ?? {});
    await getEndpoint(db, actorOf(ctx), id); // someone else's: 404 before anything is resolved
    const url = change.url === undefined ? undefined : await destination(change.url);
    ctx.body = await updateEndpoint(db, actorOf(ctx), id, { ...change, url });
  });

  router.delete('/:id', write, async (ctx) => {
    await deleteEndpoint(db, actorOf(ctx), pathId(ctx, 'webhook endpoint'));
    ctx.status = 204;
  });

  router.post('/:id/rotate-secret', write, async (ctx) => {
    ctx.body = await rotateSecret(db, actorOf(ctx), pathId(ctx, 'webhook endpoint'));
  });

  router.get('/:id/deliveries', read, async (ctx) => {
    const id = pathId(ctx, 'webhook endpoint');
    const query = validate(listDeliveriesQuery, ctx.query);
    const { deliveries, nextCursor } = await listDeliveryPage(db, actorOf(ctx), id, query);
    if (nextCursor !== null) ctx.set('Link', nextLink(`/webhooks/${id}/deliveries`, { ...query, cursor: nextCursor }));
    ctx.body = deliveries;
  });

  router.post('/:id/deliveries/:delivery_id/retry', write, async (ctx) => {
    ctx.body = await retryDelivery(deps.tasks, actorOf(ctx), pathId(ctx, 'webhook endpoint'), deliveryId(ctx));
    ctx.status = 202;
  });

  return router;
}
