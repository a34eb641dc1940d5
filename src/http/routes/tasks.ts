import http from 'node:http';
import Router from '@koa/router';
import { parseListCursor } from '../../domain/tasks/listCursor.ts';
import {
  assertMaySeeTasksOf,
  createTask,
  deleteTask,
  getTask,
  listTaskPage,
  updateTask,
} from '../../domain/tasks/tasks.ts';
import { AppError } from '../../errors.ts';
import { type Auth, actorOf, tokenExpiresAt } from '../auth.ts';
import type { AppDeps } from '../deps.ts';
import { createTaskBody, dueOf, listTasksQuery, taskEventsQuery, updateTaskBody } from '../schemas.ts';
import { validate } from '../validate.ts';
import { createWatchLimits, MAX_WAIT_SECONDS, preferredWait, streamEvents, waitForChange } from '../watch.ts';
import { idempotencyKeyOf, nextLink, pathId } from './urls.ts';

export function taskRoutes(
  deps: Pick<AppDeps, 'db' | 'tasks' | 'metrics' | 'events' | 'watchLimits' | 'log'> & { auth: Auth },
): Router {
  const { tasks, metrics, events, auth } = deps;
  const acquireWatch = createWatchLimits(deps.watchLimits);
  const router = new Router({ prefix: '/tasks', methods: http.METHODS });
  // On each route, not through router.use(): @koa/router matches routes case-insensitively but `use`
  // middleware by the exact prefix, so /TASKS would reach a handler that `use` never authenticated.
  const read = auth('tasks:read');
  const write = auth('tasks:write');

  router.post('/', write, async (ctx) => {
    const { title, description, ...when } = validate(createTaskBody, ctx.request.body ?? {});
    const input = { title, description, due: dueOf(when) };
    const { task, replayed } = await createTask(tasks, actorOf(ctx), input, idempotencyKeyOf(ctx));
    if (!replayed) metrics.tasksCreated.inc();
    ctx.status = 201;
    ctx.set('Location', `/tasks/${task.id}`);
    ctx.body = task;
  });

  router.get('/', read, async (ctx) => {
    const query = validate(listTasksQuery, ctx.query);
    const { tasks: page, nextCursor } = await listTaskPage(tasks, actorOf(ctx), {
      limit: query.limit,
      sort: query.sort,
      userId: query.user_id,
      status: query.status,
      scheduleId: query.schedule_id,
      cursor: query.cursor === undefined ? undefined : (parseListCursor(query.sort, query.cursor) ?? undefined),
    });
    if (nextCursor !== null) ctx.set('Link', nextLink('/tasks', { ...query, cursor: nextCursor }));
    ctx.body = page;
  });

  // Before /:id, which would take "events" for an id.
  router.get('/events', read, async (ctx) => {
    const actor = actorOf(ctx);
    const query = validate(taskEventsQuery, ctx.query);
    assertMaySeeTasksOf(actor, query.user_id);
    if (events.closed) throw new AppError(503, 'unavailable', 'shutting down');
    await streamEvents(ctx, deps, actor, query.user_id, acquireWatch(actor.id));
  });

  router.get('/:id', read, async (ctx) => {
    const actor = actorOf(ctx);
    const id = pathId(ctx, 'task');
    const wait = preferredWait(ctx);
    const first = await getTask(tasks, actor, id); // someone else's task: 404 at once, whatever the wait
    if (wait === null) {
      ctx.body = first;
      return;
    }
    // A wait ends at its token's expiry at the latest: the client asks again with a fresh token.
    const seconds = Math.min(
      wait,
      MAX_WAIT_SECONDS,
      Math.max(0, Math.floor((tokenExpiresAt(ctx) - Date.now()) / 1000)),
    );
    ctx.set('Preference-Applied', `wait=${seconds}`);
    ctx.set('Vary', 'Prefer');
    if (first.status !== 'pending' || seconds === 0 || events.closed) {
      ctx.body = first;
      return;
    }
    const release = acquireWatch(actor.id);
    try {
      ctx.state.unbounded = true;
      const until = Date.now() + seconds * 1000;
      for (;;) {
        // Watch first, then read: a change between the two is never missed.
        const watching = await waitForChange(ctx, events, actor, first, Math.max(0, until - Date.now()) / 1000);
        // Each read checks the token again: a logout or a role change meanwhile applies to this answer too.
        const current = await auth
          .optional(ctx, 'tasks:read')
          .then((now) => getTask(tasks, now ?? actor, id))
          .catch((error: unknown) => {
            watching.stop(); // deleted meanwhile (404), or the token revoked (401): nothing left watching
            throw error;
          });
        if (current.status !== 'pending' || Date.now() >= until || events.closed || ctx.req.destroyed) {
          watching.stop();
          ctx.body = current;
          return;
        }
        await watching.changed;
      }
    } finally {
      release();
    }
  });

  router.patch('/:id', write, async (ctx) => {
    const id = pathId(ctx, 'task');
    const { due_at, delay_seconds, ...change } = validate(updateTaskBody, ctx.request.body ?? {});
    ctx.body = await updateTask(tasks, actorOf(ctx), id, { ...change, due: dueOf({ due_at, delay_seconds }) });
  });

  router.delete('/:id', write, async (ctx) => {
    await deleteTask(tasks, actorOf(ctx), pathId(ctx, 'task'));
    ctx.status = 204;
  });

  return router;
}
