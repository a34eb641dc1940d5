import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { apiKeyRow } from '../domain/apiKeys/apiKey.ts';
import { scheduleRow } from '../domain/schedules/schedule.ts';
import { queueOverviewRow } from '../domain/tasks/overview.ts';
import { taskRow } from '../domain/tasks/task.ts';
import { userRow } from '../domain/users/user.ts';
import { deliveryRow, endpointRow } from '../domain/webhooks/webhook.ts';
import type { Access } from './auth.ts';
import {
  changePasswordBody,
  createApiKeyBody,
  createScheduleBody,
  createTaskBody,
  createWebhookBody,
  deleteAccountBody,
  errorResponse,
  listDeliveriesQuery,
  listSchedulesQuery,
  listTasksQuery,
  listUsersQuery,
  loginBody,
  previewQuery,
  registerBody,
  taskEventsQuery,
  tokenResponse,
  upcomingQuery,
  updateScheduleBody,
  updateTaskBody,
  updateUserBody,
  updateWebhookBody,
} from './schemas.ts';
import { MAX_WAIT_SECONDS } from './watch.ts';

/** Error responses by status: each names the codes it may carry. */
const ERRORS = {
  400: ['Invalid input: the details name each bad field', ['invalid_json', 'validation_failed']],
  401: ['No token, a bad, expired or revoked one, one whose account is gone, or a wrong password', ['unauthorized']],
  403: ['Not allowed for this account, or an API key without the scope needed', ['forbidden', 'insufficient_scope']],
  404: ["No such task, user, endpoint or delivery, or someone else's (never a 403)", ['not_found']],
  409: [
    'A conflict: an account with this email exists, a completed task cannot be rescheduled, the last admin cannot be removed, 10 webhook endpoints exist, or the delivery has not failed',
    ['conflict'],
  ],
  413: ['The body is over 64 KB', ['payload_too_large']],
  415: ['The body is not JSON, or its Content-Encoding is unknown', ['unsupported_media_type']],
  422: ['This Idempotency-Key was used with another body', ['idempotency_key_reused']],
  429: ['Too many requests: see Retry-After', ['rate_limited']],
  500: ['Internal error: the details are in the log, under X-Request-Id', ['internal']],
  503: ['The database is unavailable, or the service is starting or stopping: see Retry-After', ['unavailable']],
} as const;

function errors(...statuses: (keyof typeof ERRORS)[]): ZodOpenApiResponsesObject {
  return Object.fromEntries(
    [...statuses, 500 as const].map((status) => {
      const [description, codes] = ERRORS[status];
      return [
        status,
        {
          description: `${description} (code: ${codes.join(' or ')})`,
          content: { 'application/json': { schema: errorResponse } },
        },
      ];
    }),
  );
}

const json = (schema: z.ZodType, example?: unknown) => ({
  'application/json': { schema, ...(example !== undefined && { example }) },
});
/**
 * Who may call an operation, as the route's auth middleware says (test/openapi.test.ts holds the two
 * equal): a login token, or an API key with the scope (`apiKey`'s list names it); `any` key; or a login
 * token only.
 */
const access = (needed: Access) => ({
  security: needed === 'login' ? [{ bearer: [] }] : [{ bearer: [] }, { apiKey: needed === 'any' ? [] : [needed] }],
});
const taskExample = {
  id: 1,
  user_id: 1,
  title: 'Deployment Task',
  description: 'description here',
  status: 'pending',
  due_at: '2026-11-24T10:02:00.000Z',
  completed_at: null,
  created_at: '2026-11-24T10:00:00.000Z',
  updated_at: '2026-11-24T10:00:00.000Z',
  job_id: '7d9f2c7e-1b1e-4b5a-9a55-2f0c3f1f8e21',
  schedule_id: null,
};
const scheduleId = z.object({
  id: z.string().meta({ description: 'The schedule id (a positive integer)', example: '1' }),
});
const scheduleExample = {
  id: 1,
  user_id: 1,
  title: 'Stand-up notes',
  description: '',
  cron: '0 9 * * MON-FRI',
  time_zone: 'Europe/Berlin',
  paused: false,
  next_due_at: '2027-03-15T08:00:00.000Z',
  next_task_id: 42,
  skipped: 0,
  created_at: '2027-03-12T10:00:00.000Z',
  updated_at: '2027-03-12T10:00:00.000Z',
};
const taskId = z.object({ id: z.string().meta({ description: 'The task id (a positive integer)', example: '1' }) });
const endpointId = z.object({
  id: z.string().meta({ description: 'The webhook endpoint id (a positive integer)', example: '1' }),
});
const userId = z.object({ id: z.string().meta({ description: 'The user id (a positive integer)', example: '1' }) });
const apiKeyId = z.object({
  key_id: z.string().meta({ description: 'The API key id (a positive integer)', example: '1' }),
});

const operations: Record<string, Record<string, ZodOpenApiOperationObject>> = {
  '/register': {
    post: {
      tags: ['accounts'],
      summary: 'Register an account',
      description: `Emails are trimmed and unique case-insensitively. \`role: "admin"\` is granted while no admin
exists yet (a fresh database: the first admin), or with an admin's token; otherwise 403. Rate limited per
client address (RATE_LIMIT_AUTH_PER_MINUTE).`,
      security: [{}, { bearer: [] }],
      requestBody: {
        content: json(registerBody, { email: 'dev@example.com', password: 'securepassword123', role: 'admin' }),
      },
      responses: {
        201: { description: 'The account', content: json(userRow) },
        ...errors(400, 401, 403, 409, 413, 415, 429, 503),
      },
    },
  },
  '/login': {
    post: {
      tags: ['accounts'],
      summary: 'Log in: a token for the Authorization header',
      description: 'A wrong email and a wrong password get the same 401. Failed logins lock an account for a while.',
      requestBody: { content: json(loginBody, { email: 'dev@example.com', password: 'securepassword123' }) },
      responses: {
        200: { description: 'A token', content: json(tokenResponse) },
        ...errors(400, 401, 413, 415, 429, 503),
      },
    },
  },
  '/me': {
    get: {
      tags: ['accounts'],
      summary: 'Who the token belongs to',
      ...access('any'),
      responses: { 200: { description: 'The account', content: json(userRow) }, ...errors(401, 503) },
    },
    delete: {
      tags: ['accounts'],
      summary: 'Delete your account',
      description: `With your password. The account, its tasks (their jobs removed) and idempotency keys go in one
transaction; its tokens are refused at once. The last admin cannot leave (409). A wrong password is a 401 and
counts as a failed login of the account.`,
      ...access('login'),
      requestBody: { content: json(deleteAccountBody, { password: 'securepassword123' }) },
      responses: { 204: { description: 'Deleted' }, ...errors(400, 401, 409, 413, 415, 429, 503) },
    },
  },
  '/me/password': {
    post: {
      tags: ['accounts'],
      summary: 'Change your password',
      description: `Every token issued before, this one included, is refused from then on: log in again with the
new password. A wrong current password is a 401 and counts as a failed login of the account.`,
      ...access('login'),
      requestBody: {
        content: json(changePasswordBody, { current_password: 'securepassword123', new_password: 'another secret 42' }),
      },
      responses: { 204: { description: 'Changed' }, ...errors(400, 401, 413, 415, 429, 503) },
    },
  },
  '/logout': {
    post: {
      tags: ['accounts'],
      summary: 'Log out everywhere',
      description: `Every token of this user issued before, on any device, is refused from then on; open event
streams and waits end. A token issued after works.`,
      ...access('login'),
      responses: { 204: { description: 'Logged out' }, ...errors(401, 503) },
    },
  },
  '/me/api-keys': {
    post: {
      tags: ['api keys'],
      summary: 'Make an API key for a script (shown once)',
      description: `\`key\` (\`tm_\` + 43 random base62 characters + a 6-character checksum) is in this answer only:
only its hash is stored. It acts as you, with your current role, within its \`scopes\`; send it as a token is
sent. At most 20 keys per user (409). Without \`expires_in_days\` it does not expire. Logout and password
changes do not end keys (revoke them here); deleting the account does. Counts like a password check
(RATE_LIMIT_AUTH_PER_MINUTE per address).`,
      ...access('login'),
      requestBody: {
        content: json(createApiKeyBody, {
          name: 'CI deploys',
          scopes: ['tasks:read', 'tasks:write'],
          expires_in_days: 90,
        }),
      },
      responses: {
        201: {
          description: 'The key, with `key` (the only time it is shown)',
          headers: z.object({
            location: z.string().meta({ description: '/me/api-keys/{key_id}', example: '/me/api-keys/1' }),
          }),
          content: json(
            apiKeyRow.extend({ key: z.string().meta({ description: 'The key: store it now, it is not shown again' }) }),
          ),
        },
        ...errors(400, 401, 409, 413, 415, 429, 503),
      },
    },
    get: {
      tags: ['api keys'],
      summary: 'Your API keys, newest first (never the keys themselves)',
      ...access('login'),
      responses: { 200: { description: 'The keys', content: json(z.array(apiKeyRow)) }, ...errors(401, 503) },
    },
  },
  '/me/api-keys/{key_id}': {
    delete: {
      tags: ['api keys'],
      summary: 'Revoke one of your API keys: refused at once, in every process',
      ...access('login'),
      requestParams: { path: apiKeyId },
      responses: { 204: { description: 'Revoked' }, ...errors(401, 404, 503) },
    },
  },
  '/users/{id}/api-keys': {
    get: {
      tags: ['users'],
      summary: "A user's API keys (admins)",
      ...access('login'),
      requestParams: { path: userId },
      responses: { 200: { description: 'The keys', content: json(z.array(apiKeyRow)) }, ...errors(401, 403, 404, 503) },
    },
  },
  '/users/{id}/api-keys/{key_id}': {
    delete: {
      tags: ['users'],
      summary: "Revoke a user's API key (admins)",
      ...access('login'),
      requestParams: { path: userId.extend(apiKeyId.shape) },
      responses: { 204: { description: 'Revoked' }, ...errors(401, 403, 404, 503) },
    },
  },
  '/users': {
    get: {
      tags: ['users'],
      summary: 'List users, newest first (admins)',
      ...access('login'),
      requestParams: { query: listUsersQuery },
      responses: {
        200: {
          description: 'A page of users',
          headers: z.object({
            link: z.string().optional().meta({
              description: 'The next page, when there is one',
              example: '</users?limit=20&cursor=21>; rel="next"',
            }),
          }),
          content: json(z.array(userRow)),
        },
        ...errors(400, 401, 403, 503),
      },
    },
  },
  '/users/{id}': {
    get: {
      tags: ['users'],
      summary: 'Read a user (admins)',
      ...access('login'),
      requestParams: { path: userId },
      responses: { 200: { description: 'The user', content: json(userRow) }, ...errors(401, 403, 404, 503) },
    },
    patch: {
      tags: ['users'],
      summary: "Change a user's role (admins)",
      description: 'The role applies at once, to tokens already issued too. Demoting the last admin is a 409.',
      ...access('login'),
      requestParams: { path: userId },
      requestBody: { content: json(updateUserBody, { role: 'admin' }) },
      responses: {
        200: { description: 'The user', content: json(userRow) },
        ...errors(400, 401, 403, 404, 409, 413, 415, 503),
      },
    },
    delete: {
      tags: ['users'],
      summary: 'Delete a user (admins)',
      description: 'As DELETE /me, without the password. Deleting the last admin is a 409.',
      ...access('login'),
      requestParams: { path: userId },
      responses: { 204: { description: 'Deleted' }, ...errors(401, 403, 404, 409, 503) },
    },
  },
  '/tasks': {
    post: {
      tags: ['tasks'],
      summary: 'Create a task: pending, it completes on its own at its due time',
      description: `Due at \`due_at\` (RFC 3339 with an offset, in the future, at most 365 days ahead), or
\`delay_seconds\` from now (0 to 31,536,000), or neither: after TASK_COMPLETION_DELAY_SECONDS (120 s). Both at
once is a 400. The task and its completion job are written in one transaction. With \`Idempotency-Key\`, a
retry with the same key and body (due time included) gets the first answer and creates nothing (keys last 24
hours).`,
      ...access('tasks:write'),
      requestParams: {
        header: z.object({
          'idempotency-key': z
            .string()
            .optional()
            .meta({ description: '1 to 255 visible ASCII characters, bare or quoted', example: 'order-42' }),
        }),
      },
      requestBody: {
        content: json(createTaskBody, {
          title: 'Deployment Task',
          description: 'description here',
          delay_seconds: 300,
        }),
      },
      responses: {
        201: {
          description: 'The task, pending, due at `due_at`',
          headers: z.object({ location: z.string().meta({ description: '/tasks/{id}', example: '/tasks/1' }) }),
          content: json(taskRow, taskExample),
        },
        ...errors(400, 401, 413, 415, 422, 503),
      },
    },
    get: {
      tags: ['tasks'],
      summary: 'List tasks, newest first or soonest due first',
      description: `An admin lists everyone's tasks (\`user_id\` filters); others their own. \`sort=due\` lists
soonest due first, ties by id. Pages are keyset pages: follow the \`Link\` header; tasks added or deleted
meanwhile never shift a page.`,
      ...access('tasks:read'),
      requestParams: { query: listTasksQuery },
      responses: {
        200: {
          description: 'A page of tasks',
          headers: z.object({
            link: z.string().optional().meta({
              description: 'The next page, when there is one',
              example: '</tasks?sort=created&limit=20&cursor=21>; rel="next"',
            }),
          }),
          content: json(z.array(taskRow)),
        },
        ...errors(400, 401, 403, 503),
      },
    },
  },
  '/tasks/events': {
    get: {
      tags: ['tasks'],
      summary: 'Watch task changes as Server-Sent Events',
      description: `\`text/event-stream\` of the caller's task events (an admin's: everyone's, or \`user_id\`'s):
\`id: <tx>-<n>\`, \`event: created|rescheduled|completed|deleted\`, \`data: {"type","task_id","user_id","at"}\`, and a
\`: heartbeat\` comment every 15 s. Reconnect with \`Last-Event-ID\` to replay what was missed (kept 24 hours).
Browsers: use a fetch-based client that can send the Authorization header.`,
      ...access('tasks:read'),
      requestParams: {
        query: taskEventsQuery,
        header: z.object({
          'last-event-id': z.string().optional().meta({ description: 'Resume after this event', example: '812-4' }),
        }),
      },
      responses: {
        200: {
          description: 'The stream',
          content: {
            'text/event-stream': {
              schema: z.string(),
              example:
                'id: 812-4\nevent: completed\ndata: {"type":"completed","task_id":1,"user_id":1,"at":"2026-11-24T10:02:00.031Z"}\n\n',
            },
          },
        },
        ...errors(400, 401, 403, 429, 503),
      },
    },
  },
  '/tasks/{id}': {
    get: {
      tags: ['tasks'],
      summary: 'Read a task, or wait for it to complete',
      description: `With \`Prefer: wait=N\` (RFC 7240, N capped at ${MAX_WAIT_SECONDS}), a pending task's answer
waits until it completes (200), is deleted (404), or N seconds pass (200, pending).`,
      ...access('tasks:read'),
      requestParams: {
        path: taskId,
        header: z.object({ prefer: z.string().optional().meta({ example: 'wait=130' }) }),
      },
      responses: {
        200: {
          description: 'The task',
          headers: z.object({
            'preference-applied': z.string().optional().meta({ description: 'The wait applied', example: 'wait=130' }),
          }),
          content: json(taskRow, taskExample),
        },
        ...errors(401, 404, 429, 503),
      },
    },
    patch: {
      tags: ['tasks'],
      summary: 'Change a task, reschedule it, or complete it now',
      description: `Completing by hand cancels its job in the same transaction. \`due_at\` or \`delay_seconds\`
(counted from now) reschedules a pending task: its old job is deleted and a new one written in the same
transaction, so it completes at the new time only; rescheduling a completed task is a 409.`,
      ...access('tasks:write'),
      requestParams: { path: taskId },
      requestBody: { content: json(updateTaskBody, { delay_seconds: 60 }) },
      responses: {
        200: { description: 'The task', content: json(taskRow) },
        ...errors(400, 401, 404, 409, 413, 415, 503),
      },
    },
    delete: {
      tags: ['tasks'],
      summary: 'Delete a task and its pending job',
      ...access('tasks:write'),
      requestParams: { path: taskId },
      responses: { 204: { description: 'Deleted' }, ...errors(401, 404, 503) },
    },
  },
  '/webhooks': {
    post: {
      tags: ['webhooks'],
      summary: 'Register a webhook endpoint',
      description: `Each event of a subscribed type on your tasks is POSTed to \`url\`, signed by the Standard
Webhooks scheme (headers \`webhook-id\`, \`webhook-timestamp\`, \`webhook-signature\`), and retried with
backoff for at least 24 hours until it gets a 2xx within 10 s. The answer holds the signing \`secret\`: it is
shown only here and by rotate-secret. At most 10 endpoints per user. The URL must be http(s) (https only in
production unless WEBHOOK_ALLOW_HTTP), carry no credentials, and resolve to public addresses only.`,
      ...access('webhooks:write'),
      requestBody: {
        content: json(createWebhookBody, { url: 'https://example.com/hooks/tasks', events: ['task.completed'] }),
      },
      responses: {
        201: {
          description: 'The endpoint, with its secret',
          headers: z.object({ location: z.string().meta({ example: '/webhooks/1' }) }),
          content: json(endpointRow.extend({ secret: z.string().meta({ example: 'whsec_...' }) })),
        },
        ...errors(400, 401, 409, 413, 415, 503),
      },
    },
    get: {
      tags: ['webhooks'],
      summary: 'Your webhook endpoints, newest first',
      ...access('webhooks:read'),
      responses: { 200: { description: 'The endpoints', content: json(z.array(endpointRow)) }, ...errors(401, 503) },
    },
  },
  '/webhooks/{id}': {
    get: {
      tags: ['webhooks'],
      summary: 'Read a webhook endpoint',
      ...access('webhooks:read'),
      requestParams: { path: endpointId },
      responses: { 200: { description: 'The endpoint', content: json(endpointRow) }, ...errors(401, 404, 503) },
    },
    patch: {
      tags: ['webhooks'],
      summary: 'Change a webhook endpoint, or turn it off and on',
      ...access('webhooks:write'),
      requestParams: { path: endpointId },
      requestBody: { content: json(updateWebhookBody, { enabled: true }) },
      responses: {
        200: { description: 'The endpoint', content: json(endpointRow) },
        ...errors(400, 401, 404, 413, 415, 503),
      },
    },
    delete: {
      tags: ['webhooks'],
      summary: 'Delete a webhook endpoint; its pending deliveries are not made',
      ...access('webhooks:write'),
      requestParams: { path: endpointId },
      responses: { 204: { description: 'Deleted' }, ...errors(401, 404, 503) },
    },
  },
  '/webhooks/{id}/rotate-secret': {
    post: {
      tags: ['webhooks'],
      summary: 'A new signing secret',
      description: 'The old secret keeps signing beside the new one for 24 hours (both signatures are sent).',
      ...access('webhooks:write'),
      requestParams: { path: endpointId },
      responses: {
        200: { description: 'The new secret', content: json(z.object({ secret: z.string() })) },
        ...errors(401, 404, 503),
      },
    },
  },
  '/webhooks/{id}/deliveries': {
    get: {
      tags: ['webhooks'],
      summary: "An endpoint's deliveries, newest first",
      description: 'What was sent, what came back (the first kilobyte), what comes next. Kept 7 days.',
      ...access('webhooks:read'),
      requestParams: { path: endpointId, query: listDeliveriesQuery },
      responses: {
        200: {
          description: 'A page of deliveries',
          headers: z.object({
            link: z.string().optional().meta({
              description: 'The next page, when there is one',
              example: '</webhooks/1/deliveries?limit=20&cursor=41>; rel="next"',
            }),
          }),
          content: json(z.array(deliveryRow)),
        },
        ...errors(400, 401, 404, 503),
      },
    },
  },
  '/webhooks/{id}/deliveries/{delivery_id}/retry': {
    post: {
      tags: ['webhooks'],
      summary: 'Send a failed delivery again',
      description: 'A new series of attempts under the same webhook-id. Only a failed delivery: otherwise 409.',
      ...access('webhooks:write'),
      requestParams: {
        path: endpointId.extend({ delivery_id: z.string().meta({ description: 'The delivery id (a UUID)' }) }),
      },
      responses: {
        202: { description: 'The delivery, pending again', content: json(deliveryRow) },
        ...errors(401, 404, 409, 503),
      },
    },
  },
  '/schedules': {
    post: {
      tags: ['schedules'],
      summary: 'Create a schedule: a task at every cron time, in its time zone',
      description: `Every occurrence is a task: the schedule always has exactly one pending task, its next
occurrence (\`schedule_id\` set, \`due_at\` = \`next_due_at\`), written with its job in this transaction; the
following one is written in the transaction that completes or deletes it. In the zone, a local time that does
not exist (spring forward) fires once, as far past the gap (02:30 becomes 03:30); one that happens twice (fall
back) fires once, at the first. When no worker ran for a while, the overdue occurrence completes once, late,
and the next is the first cron time after now (the times between are counted in \`skipped\`). A cron firing
more often than SCHEDULE_MIN_INTERVAL_SECONDS (60), one that never fires, or an unknown zone is a 400 naming
the field. At most 100 per user. \`Idempotency-Key\` as for POST /tasks.`,
      ...access('schedules:write'),
      requestParams: {
        header: z.object({
          'idempotency-key': z
            .string()
            .optional()
            .meta({ description: '1 to 255 visible ASCII characters, bare or quoted', example: 'standup-1' }),
        }),
      },
      requestBody: {
        content: json(createScheduleBody, {
          title: 'Stand-up notes',
          cron: '0 9 * * MON-FRI',
          time_zone: 'Europe/Berlin',
        }),
      },
      responses: {
        201: {
          description: 'The schedule, with its first occurrence',
          headers: z.object({ location: z.string().meta({ example: '/schedules/1' }) }),
          content: json(scheduleRow, scheduleExample),
        },
        ...errors(400, 401, 409, 413, 415, 422, 503),
      },
    },
    get: {
      tags: ['schedules'],
      summary: 'Your schedules, newest first',
      description: "An admin lists everyone's (`user_id` filters). Keyset pages: follow the `Link` header.",
      ...access('schedules:read'),
      requestParams: { query: listSchedulesQuery },
      responses: {
        200: {
          description: 'A page of schedules',
          headers: z.object({
            link: z.string().optional().meta({
              description: 'The next page, when there is one',
              example: '</schedules?limit=20&cursor=21>; rel="next"',
            }),
          }),
          content: json(z.array(scheduleRow)),
        },
        ...errors(400, 401, 403, 503),
      },
    },
  },
  '/schedules/preview': {
    get: {
      tags: ['schedules'],
      summary: 'The times a cron would fire in a zone, before a schedule is saved',
      description: 'The same rules and the same 400s as creating the schedule (the web page shows them).',
      ...access('schedules:read'),
      requestParams: { query: previewQuery },
      responses: {
        200: {
          description: 'The next times',
          content: json(z.array(z.object({ due_at: z.string(), local: z.string() }))),
        },
        ...errors(400, 401, 503),
      },
    },
  },
  '/schedules/{id}': {
    get: {
      tags: ['schedules'],
      summary: 'Read a schedule',
      ...access('schedules:read'),
      requestParams: { path: scheduleId },
      responses: { 200: { description: 'The schedule', content: json(scheduleRow) }, ...errors(401, 404, 503) },
    },
    patch: {
      tags: ['schedules'],
      summary: 'Change, pause or resume a schedule, with its pending occurrence',
      description: `New text applies to the pending occurrence too; a new cron or zone moves it to the new next
time; \`paused: true\` deletes it and its job, \`paused: false\` writes the next future one; each in one
transaction.`,
      ...access('schedules:write'),
      requestParams: { path: scheduleId },
      requestBody: { content: json(updateScheduleBody, { paused: true }) },
      responses: {
        200: { description: 'The schedule', content: json(scheduleRow) },
        ...errors(400, 401, 404, 413, 415, 503),
      },
    },
    delete: {
      tags: ['schedules'],
      summary: 'Delete a schedule and its pending occurrence (completed ones stay, schedule_id null)',
      ...access('schedules:write'),
      requestParams: { path: scheduleId },
      responses: { 204: { description: 'Deleted' }, ...errors(401, 404, 503) },
    },
  },
  '/schedules/{id}/upcoming': {
    get: {
      tags: ['schedules'],
      summary: 'The next times the schedule fires, in UTC and in its zone',
      description:
        'So a user can check the DST rule: each time as `due_at` (UTC) and `local` (RFC 3339 with its offset).',
      ...access('schedules:read'),
      requestParams: { path: scheduleId, query: upcomingQuery },
      responses: {
        200: {
          description: 'The next times',
          content: json(z.array(z.object({ due_at: z.string(), local: z.string() })), [
            { due_at: '2027-03-14T07:30:00.000Z', local: '2027-03-14T03:30:00-04:00' },
          ]),
        },
        ...errors(400, 401, 404, 503),
      },
    },
  },
  '/healthz': {
    get: {
      tags: ['operations'],
      summary: 'The process is up',
      responses: { 200: { description: 'Up', content: json(z.object({ status: z.enum(['ok', 'starting']) })) } },
    },
  },
  '/readyz': {
    get: {
      tags: ['operations'],
      summary: 'Ready: the database answers within a second',
      responses: {
        200: { description: 'Ready', content: json(z.object({ status: z.literal('ready') })) },
        ...errors(503),
      },
    },
  },
  '/metrics': {
    get: {
      tags: ['operations'],
      summary: 'Prometheus metrics',
      description: 'With METRICS_TOKEN set, send it as a bearer token.',
      security: [{}, { bearer: [] }],
      responses: {
        200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } },
        ...errors(401),
      },
    },
  },
  '/openapi.json': {
    get: {
      tags: ['operations'],
      summary: 'This document (OpenAPI 3.1)',
      responses: {
        200: { description: 'The document', content: { 'application/json': { schema: z.object({}).loose() } } },
      },
    },
  },
  '/docs': {
    get: {
      tags: ['operations'],
      summary: 'The API reference page (works offline)',
      responses: { 200: { description: 'HTML', content: { 'text/html': { schema: z.string() } } } },
    },
  },
  '/': {
    get: {
      tags: ['web app'],
      summary: 'The web app: sign in, see your tasks complete live, create, reschedule, delete, manage webhooks',
      responses: { 200: { description: 'The page', content: { 'text/html': { schema: z.string() } } } },
    },
  },
  '/app/{file}': {
    get: {
      tags: ['web app'],
      summary: "The web app's modules and styles",
      requestParams: { path: z.object({ file: z.string().meta({ example: 'app.js' }) }) },
      responses: {
        200: {
          description: 'The file',
          content: { 'text/css': { schema: z.string() }, 'text/javascript': { schema: z.string() } },
        },
        ...errors(404),
      },
    },
  },
  '/app/vendor/{file}': {
    get: {
      tags: ['web app'],
      summary: 'Preact, its hooks and htm, from the installed packages',
      requestParams: { path: z.object({ file: z.string().meta({ example: 'preact.js' }) }) },
      responses: {
        200: { description: 'The module', content: { 'text/javascript': { schema: z.string() } } },
        ...errors(404),
      },
    },
  },
  '/queue': {
    get: {
      tags: ['users'],
      summary: 'The queue at a glance (admins)',
      ...access('tasks:read'),
      responses: { 200: { description: 'The counts', content: json(queueOverviewRow) }, ...errors(401, 403, 503) },
    },
  },
  '/docs/{file}': {
    get: {
      tags: ['operations'],
      summary: "The reference page's scripts and styles",
      requestParams: { path: z.object({ file: z.string().meta({ example: 'swagger-ui.css' }) }) },
      responses: {
        200: {
          description: 'The file',
          content: {
            'text/css': { schema: z.string() },
            'text/javascript': { schema: z.string() },
            'image/png': { schema: z.string().meta({ contentEncoding: 'binary' }) },
          },
        },
        ...errors(404),
      },
    },
  },
};

// Every operation a key with a scope may call can answer 403 insufficient_scope, to a key without it.
for (const item of Object.values(operations)) {
  for (const operation of Object.values(item)) {
    const scoped = operation.security?.some((entry) => (entry.apiKey?.length ?? 0) > 0);
    if (scoped && operation.responses && !('403' in operation.responses)) {
      Object.assign(operation.responses, { 403: errors(403)['403'] });
    }
  }
}

/** The OpenAPI 3.1 document of the API, generated from the schemas that validate requests and shape responses. */
export function createOpenApiDocument() {
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Task Manager',
      version: '1.0.0',
      description: `Tasks that complete on their own after a delay, durably: Postgres is the queue.
Register, log in, and send the token as \`Authorization: Bearer <token>\`.`,
    },
    servers: [{ url: '/', description: 'This server' }],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'The token from POST /login. The `Bearer ` prefix is optional: the bare token works too.',
        },
        apiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description:
            'An API key from POST /me/api-keys (`tm_...`), sent like a token: `Authorization: Bearer tm_...` (the prefix is optional). Each operation names the scope it needs; the account routes and /users take a login token only.',
        },
      },
    },
    paths: operations,
  });
}
