import http from 'node:http';
import Router from '@koa/router';
import {
  createSchedule,
  deleteSchedule,
  getSchedule,
  listSchedulePage,
  previewTimes,
  type ScheduleDeps,
  upcomingTimes,
  updateSchedule,
} from '../../domain/schedules/schedules.ts';
import { type Auth, actorOf } from '../auth.ts';
import { createScheduleBody, listSchedulesQuery, previewQuery, upcomingQuery, updateScheduleBody } from '../schemas.ts';
import { validate } from '../validate.ts';
import { idempotencyKeyOf, nextLink, pathId } from './urls.ts';

/** Recurring tasks: each occurrence is a task. Someone else's schedule is a 404, as tasks are. */
export function scheduleRoutes(deps: { schedules: ScheduleDeps; auth: Auth }): Router {
  const { schedules } = deps;
  const router = new Router({ prefix: '/schedules', methods: http.METHODS });
  const read = deps.auth('schedules:read');
  const write = deps.auth('schedules:write');

  router.post('/', write, async (ctx) => {
    const input = validate(createScheduleBody, ctx.request.body ?? {});
    // A retry with the same Idempotency-Key gets the first answer, as POST /tasks gives it.
    const { schedule } = await createSchedule(
      schedules,
      actorOf(ctx),
      {
        title: input.title,
        description: input.description,
        cron: input.cron,
        timeZone: input.time_zone,
        paused: input.paused,
      },
      idempotencyKeyOf(ctx),
    );
    ctx.status = 201;
    ctx.set('Location', `/schedules/${schedule.id}`);
    ctx.body = schedule;
  });

  router.get('/', read, async (ctx) => {
    const query = validate(listSchedulesQuery, ctx.query);
    const { schedules: page, nextCursor } = await listSchedulePage(schedules, actorOf(ctx), {
      limit: query.limit,
      userId: query.user_id,
      beforeId: query.cursor,
    });
    if (nextCursor !== null) ctx.set('Link', nextLink('/schedules', { ...query, cursor: nextCursor }));
    ctx.body = page;
  });

  // Before '/:id': the times a cron would fire, before a schedule is saved.
  router.get('/preview', read, async (ctx) => {
    const query = validate(previewQuery, ctx.query);
    ctx.body = previewTimes(schedules, {
      cron: query.cron,
      timeZone: query.time_zone,
      count: query.count,
      from: query.from === undefined ? Date.now() : Date.parse(query.from),
    });
  });

  router.get('/:id', read, async (ctx) => {
    ctx.body = await getSchedule(schedules, actorOf(ctx), pathId(ctx, 'schedule'));
  });

  router.get('/:id/upcoming', read, async (ctx) => {
    const id = pathId(ctx, 'schedule');
    const query = validate(upcomingQuery, ctx.query);
    ctx.body = await upcomingTimes(schedules, actorOf(ctx), id, {
      count: query.count,
      from: query.from === undefined ? Date.now() : Date.parse(query.from),
    });
  });

  router.patch('/:id', write, async (ctx) => {
    const id = pathId(ctx, 'schedule');
    const change = validate(updateScheduleBody, ctx.request.body ?? {});
    ctx.body = await updateSchedule(schedules, actorOf(ctx), id, {
      title: change.title,
      description: change.description,
      cron: change.cron,
      timeZone: change.time_zone,
      paused: change.paused,
    });
  });

  router.delete('/:id', write, async (ctx) => {
    await deleteSchedule(schedules, actorOf(ctx), pathId(ctx, 'schedule'));
    ctx.status = 204;
  });

  return router;
}
