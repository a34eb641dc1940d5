import http from 'node:http';
import Router from '@koa/router';
import { assertAdmin, changeRole, deleteUser, getUser, listUserPage } from '../../domain/users/administration.ts';
import { type Auth, actorOf } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import type { AuthLimiter } from '../rateLimit.ts';
import { listUsersQuery, updateUserBody } from '../schemas.ts';
import { validate } from '../validate.ts';
import { nextLink, pathId } from './urls.ts';

/** User administration, for admins only (403 for anyone else). */
export function userRoutes({
  db,
  tasks,
  events,
  limiter,
  auth: authFor,
}: Pick<AppDeps, 'db' | 'tasks' | 'events'> & { limiter: AuthLimiter; auth: Auth }): Router {
  const router = new Router({ prefix: '/users', methods: http.METHODS });
  // On each route, as for tasks: @koa/router matches routes case-insensitively but `use` by exact prefix.
  // A login token only: an API key never reaches user administration.
  const auth = authFor('login');

  router.get('/', auth, async (ctx) => {
    const query = validate(listUsersQuery, ctx.query);
    const { users, nextCursor } = await listUserPage(db, actorOf(ctx), query);
    if (nextCursor !== null) ctx.set('Link', nextLink('/users', { ...query, cursor: nextCursor }));
    ctx.body = users;
  });

  router.get('/:id', auth, async (ctx) => {
    ctx.body = await getUser(db, actorOf(ctx), pathId(ctx, 'user'));
  });

  router.patch('/:id', auth, async (ctx) => {
    const id = pathId(ctx, 'user');
    const { role } = validate(updateUserBody, ctx.request.body ?? {});
    ctx.body = await changeRole(tasks, actorOf(ctx), id, role);
    events.actors.forget([id]); // this process at once; the others by the users trigger's NOTIFY
  });

  router.delete('/:id', auth, async (ctx) => {
    const actor = actorOf(ctx);
    assertAdmin(actor); // users delete themselves with DELETE /me, which asks for their password
    const user = await deleteUser(tasks, actor, pathId(ctx, 'user'));
    events.actors.forget([user.id]);
    await limiter.forgetAccount(user.email);
    ctx.status = 204;
  });

  return router;
}
