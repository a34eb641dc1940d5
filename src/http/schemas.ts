import { z } from 'zod';
import { apiKeyScopes } from '../domain/apiKeys/apiKey.ts';
import { parseListCursor, taskSorts } from '../domain/tasks/listCursor.ts';
import { type Due, taskStatuses } from '../domain/tasks/task.ts';
import { MAX_PASSWORD_BYTES } from '../domain/users/accounts.ts';
import { roles } from '../domain/users/user.ts';
import { webhookEventTypes } from '../domain/webhooks/webhook.ts';
import { errorCodes } from '../errors.ts';

/**
 * What requests may carry: the routes validate with these, and the OpenAPI document (openapi.ts) is
 * generated from them, so the two cannot drift. Examples are the original Postman guide's own.
 */
const email = z
  .string()
  .trim()
  .max(254, 'must be at most 254 characters')
  .pipe(z.email({ message: 'must be an email address' }))
  .meta({ description: 'Trimmed, and compared case-insensitively', example: 'dev@example.com' });

const password = z
  .string()
  .min(8, 'must be at least 8 characters')
  // bcrypt reads at most 72 bytes; longer is refused rather than silently cut.
  .refine(
    (value) => Buffer.byteLength(value, 'utf8') <= MAX_PASSWORD_BYTES,
    `must be at most ${MAX_PASSWORD_BYTES} bytes in UTF-8`,
  )
  .meta({ description: '8 to 72 bytes in UTF-8', example: 'securepassword123' });

const positiveId = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
/** The size of a keyset page, in every list. */
const pageLimit = z.coerce.number().int().min(1).max(100).default(20).meta({ description: 'Page size, 1 to 100' });
/** The `cursor` of a list whose pages go by id. */
const nextPageCursor = positiveId
  .optional()
  .meta({ description: 'From the `Link: rel="next"` header of the previous page' });

/** A password to check (not to set): anything up to 1000 characters, as at login. */
const givenPassword = z.string().min(1).max(1000).meta({ example: 'securepassword123' });

export const registerBody = z
  .strictObject({
    email,
    password,
    role: z
      .enum(roles)
      .default('user')
      .meta({ description: '"admin" only while no admin exists, or with an admin token', example: 'admin' }),
  })
  .meta({ id: 'RegisterRequest' });

export const loginBody = z
  .strictObject({
    email: z.string().min(1).max(1000).meta({ example: 'dev@example.com' }),
    password: givenPassword,
  })
  .meta({ id: 'LoginRequest' });

export const changePasswordBody = z
  .strictObject({ current_password: givenPassword, new_password: password })
  // A "change" to the same password would end every token and change nothing else: say so instead.
  .refine((body) => body.new_password !== body.current_password, {
    path: ['new_password'],
    message: 'must differ from the current password',
  })
  .meta({ id: 'ChangePasswordRequest' });

export const deleteAccountBody = z.strictObject({ password: givenPassword }).meta({ id: 'DeleteAccountRequest' });

export const updateUserBody = z
  .strictObject({ role: z.enum(roles).meta({ description: 'Demoting the last admin is a 409', example: 'admin' }) })
  .meta({ id: 'UpdateUserRequest' });

export const listUsersQuery = z.strictObject({
  role: z.enum(roles).optional().meta({ description: 'Only users with this role' }),
  limit: pageLimit,
  cursor: nextPageCursor,
});

const title = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .meta({ description: 'Trimmed; 1 to 200 characters', example: 'Deployment Task' });
const description = z
  .string()
  .max(5000, 'must be at most 5000 characters')
  .meta({ description: 'Up to 5000 characters', example: 'description here' });

/** How far ahead a task may be due: 365 days, by `due_at` or `delay_seconds` alike. */
const MAX_DELAY_SECONDS = 31_536_000;

const dueAt = z
  .string()
  // RFC 3339 (section 5.6) allows a lowercase `t` and `z`; zod's format check wants them uppercase.
  .toUpperCase()
  .datetime({
    offset: true,
    abort: true, // a malformed date-time says only that
    message: 'must be an RFC 3339 date-time with a time zone offset (Z or +hh:mm)',
  })
  .refine((text) => Date.parse(text) > Date.now(), 'must be in the future')
  .refine((text) => Date.parse(text) <= Date.now() + MAX_DELAY_SECONDS * 1000, 'must be at most 365 days ahead')
  .meta({
    description:
      'When the task completes: RFC 3339 with an offset, in the future, at most 365 days ahead (cut to milliseconds)',
    example: '2026-12-03T09:00:00Z',
    // The format says it (`date-time` is RFC 3339); zod's uppercase-only pattern would refuse `t` and `z`.
    override: ({ jsonSchema }) => {
      delete jsonSchema.pattern;
    },
  });
const delaySeconds = z
  .number({ message: 'must be a whole number of seconds' })
  .int({ message: 'must be a whole number of seconds', abort: true })
  .min(0, 'must be at least 0')
  .max(MAX_DELAY_SECONDS, `must be at most ${MAX_DELAY_SECONDS} (365 days)`)
  .meta({ description: 'Seconds from now until the task completes: 0 (now) to 31,536,000 (365 days)', example: 300 });

/** `due_at` and `delay_seconds` say the same thing two ways: one at most. */
function oneDueTime(body: { due_at?: string | undefined; delay_seconds?: number | undefined }, ctx: z.RefinementCtx) {
  if (body.due_at !== undefined && body.delay_seconds !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['delay_seconds'], message: 'give due_at or delay_seconds, not both' });
  }
}

export const createTaskBody = z
  .strictObject({
    title,
    description: description.default(''),
    due_at: dueAt.optional(),
    delay_seconds: delaySeconds.optional(),
  })
  .superRefine(oneDueTime)
  .meta({
    id: 'CreateTaskRequest',
    description: 'Without due_at or delay_seconds, the task is due after TASK_COMPLETION_DELAY_SECONDS (120 s)',
  });

export const updateTaskBody = z
  .strictObject({
    title: title.optional(),
    description: description.optional(),
    status: z
      .literal('completed', { message: 'can only be set to "completed"' })
      .optional()
      .meta({ description: 'Completes the task now and cancels its job' }),
    due_at: dueAt.optional().meta({ description: 'Reschedules a pending task to this time' }),
    delay_seconds: delaySeconds
      .optional()
      .meta({ description: 'Reschedules a pending task to this many seconds from now' }),
  })
  .refine(
    (body) => Object.keys(body).length > 0,
    'give at least one of title, description, status, due_at, delay_seconds',
  )
  .superRefine(oneDueTime)
  .superRefine((body, ctx) => {
    if (body.status !== undefined && (body.due_at !== undefined || body.delay_seconds !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['status'], message: 'a task cannot be completed and rescheduled at once' });
    }
  })
  .meta({ id: 'UpdateTaskRequest' });

/** When a task is due, as a request says it: a time, seconds from now, or nothing (the default delay). */
export function dueOf(body: { due_at?: string | undefined; delay_seconds?: number | undefined }): Due | undefined {
  if (body.due_at !== undefined) return { at: new Date(body.due_at) };
  if (body.delay_seconds !== undefined) return { delaySeconds: body.delay_seconds };
  return undefined;
}

export const listTasksQuery = z
  .strictObject({
    status: z.enum(taskStatuses).optional().meta({ description: 'Only tasks in this state' }),
    sort: z
      .enum(taskSorts)
      .default('created')
      .meta({ description: '`created`: newest first; `due`: soonest due first (ties by id)' }),
    limit: pageLimit,
    cursor: z
      .string()
      .optional()
      .meta({ description: 'From the `Link: rel="next"` header of the previous page (opaque)' }),
    user_id: positiveId.optional().meta({ description: "Admins: one user's tasks (others: their own id only)" }),
    schedule_id: positiveId.optional().meta({ description: "Only this schedule's occurrences" }),
  })
  .superRefine((query, ctx) => {
    if (query.cursor !== undefined && parseListCursor(query.sort, query.cursor) === null) {
      ctx.addIssue({ code: 'custom', path: ['cursor'], message: `must be a next-page cursor of sort=${query.sort}` });
    }
  });

export const taskEventsQuery = z.strictObject({
  user_id: positiveId.optional().meta({ description: "Admins: one user's events (others: their own id only)" }),
});

const webhookUrl = z.string().trim().min(1, 'must not be empty').max(2000, 'must be at most 2000 characters').meta({
  description:
    'http(s), no credentials, no whitespace or control characters inside, never port 0 nor a loopback, private or other non-public address; stored and shown as it is called (normalized)',
  example: 'https://example.com/hooks/tasks',
});
const webhookEvents = z
  .array(z.enum(webhookEventTypes))
  .min(1, 'must name at least one event type')
  .refine((events) => new Set(events).size === events.length, 'must not repeat an event type')
  .meta({ description: 'The event types delivered', example: ['task.completed'] });
const webhookDescription = z
  .string()
  .max(500, 'must be at most 500 characters')
  .meta({ description: 'Up to 500 characters', example: 'CI notifications' });

export const createWebhookBody = z
  .strictObject({
    url: webhookUrl,
    events: webhookEvents.default(['task.completed']),
    description: webhookDescription.default(''),
  })
  .meta({ id: 'CreateWebhookRequest' });

export const updateWebhookBody = z
  .strictObject({
    url: webhookUrl.optional(),
    events: webhookEvents.optional(),
    description: webhookDescription.optional(),
    enabled: z.boolean().optional().meta({ description: 'Turn deliveries off, or back on (after a 410)' }),
  })
  .refine((body) => Object.keys(body).length > 0, 'give at least one of url, events, description, enabled')
  .meta({ id: 'UpdateWebhookRequest' });

export const listDeliveriesQuery = z.strictObject({
  limit: pageLimit,
  cursor: nextPageCursor,
});

export const tokenResponse = z
  .object({
    token: z.string().meta({ description: 'A JWT (HS256): send it as `Authorization: Bearer <token>`' }),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int().meta({ description: 'Seconds until it expires' }),
  })
  .meta({ id: 'Token' });
export type TokenResponse = z.output<typeof tokenResponse>;

export const createApiKeyBody = z
  .strictObject({
    name: z
      .string()
      .trim()
      .min(1, 'must not be empty')
      .max(100, 'must be at most 100 characters')
      .meta({ description: 'What it is for: 1 to 100 characters', example: 'CI deploys' }),
    scopes: z
      .array(z.enum(apiKeyScopes))
      .min(1, 'must name at least one scope')
      .refine((scopes) => new Set(scopes).size === scopes.length, 'must not repeat a scope')
      .meta({ description: 'What the key may do', example: ['tasks:read', 'tasks:write'] }),
    expires_in_days: z
      .number({ message: 'must be a whole number of days' })
      .int({ message: 'must be a whole number of days' })
      .min(1)
      .max(3650)
      .optional()
      .meta({ description: '1 to 3650; without it, the key does not expire', example: 90 }),
  })
  .meta({ id: 'CreateApiKeyRequest' });

export const errorResponse = z
  .object({
    error: z.object({
      code: z.enum(errorCodes),
      message: z.string(),
      details: z
        .array(z.object({ field: z.string(), message: z.string() }))
        .optional()
        .meta({ description: 'With validation_failed: each bad field' }),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorResponse = z.output<typeof errorResponse>;

const cron = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').meta({
  description:
    'Five fields (minute hour day-of-month month day-of-week), or six with seconds first; lists, ranges, steps, month and weekday names, @hourly, @daily, @weekly, @monthly, @yearly. When both day fields are restricted, either matching is enough (Vixie cron).',
  example: '0 9 * * MON-FRI',
});
const timeZone = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .meta({ description: 'An IANA time zone; the cron is read on its wall clock', example: 'Europe/Berlin' });

export const createScheduleBody = z
  .strictObject({
    title,
    description: description.default(''),
    cron,
    time_zone: timeZone.default('UTC'),
    paused: z.boolean().default(false).meta({ description: 'Created paused: no occurrence until resumed' }),
  })
  .meta({ id: 'CreateScheduleRequest' });

export const updateScheduleBody = z
  .strictObject({
    title: title.optional(),
    description: description.optional(),
    cron: cron.optional(),
    time_zone: timeZone.optional(),
    paused: z
      .boolean()
      .optional()
      .meta({ description: 'true deletes the pending occurrence; false writes the next future one' }),
  })
  .refine((body) => Object.keys(body).length > 0, 'give at least one of title, description, cron, time_zone, paused')
  .meta({ id: 'UpdateScheduleRequest' });

export const listSchedulesQuery = z.strictObject({
  user_id: positiveId.optional().meta({ description: "Admins: one user's schedules (others: their own id only)" }),
  limit: pageLimit,
  cursor: nextPageCursor,
});

export const upcomingQuery = z.strictObject({
  count: z.coerce.number().int().min(1).max(50).default(10).meta({ description: 'How many times, 1 to 50' }),
  from: z
    .string()
    .toUpperCase()
    .datetime({ offset: true, message: 'must be an RFC 3339 date-time with a time zone offset (Z or +hh:mm)' })
    .optional()
    .meta({ description: 'The times after this one (default: now)', example: '2027-03-14T00:00:00Z' }),
});

export const previewQuery = upcomingQuery.extend({
  cron,
  time_zone: timeZone.default('UTC'),
});
