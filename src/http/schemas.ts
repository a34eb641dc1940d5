import { z } from 'zod';
import { taskStatuses } from '../domain/tasks/task.ts';
import { MAX_PASSWORD_BYTES } from '../domain/users/accounts.ts';
import { roles } from '../domain/users/user.ts';

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
    password: z.string().min(1).max(1000).meta({ example: 'securepassword123' }),
  })
  .meta({ id: 'LoginRequest' });

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

export const createTaskBody = z
  .strictObject({ title, description: description.default('') })
  .meta({ id: 'CreateTaskRequest' });

export const updateTaskBody = z
  .strictObject({
    title: title.optional(),
    description: description.optional(),
    status: z
      .literal('completed', { message: 'can only be set to "completed"' })
      .optional()
      .meta({ description: 'Completes the task now and cancels its job' }),
  })
  .refine((body) => Object.keys(body).length > 0, 'give at least one of title, description, status')
  .meta({ id: 'UpdateTaskRequest' });

const positiveId = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const listTasksQuery = z.strictObject({
  status: z.enum(taskStatuses).optional().meta({ description: 'Only tasks in this state' }),
  limit: z.coerce.number().int().min(1).max(100).default(20).meta({ description: 'Page size, 1 to 100' }),
  cursor: positiveId.optional().meta({ description: 'From the `Link: rel="next"` header of the previous page' }),
  user_id: positiveId.optional().meta({ description: "Admins: one user's tasks (others: their own id only)" }),
});

export const taskEventsQuery = z.strictObject({
  user_id: positiveId.optional().meta({ description: "Admins: one user's events (others: their own id only)" }),
});

export const tokenResponse = z
  .object({
    token: z.string().meta({ description: 'A JWT (HS256): send it as `Authorization: Bearer <token>`' }),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int().meta({ description: 'Seconds until it expires' }),
  })
  .meta({ id: 'Token' });
export type TokenResponse = z.output<typeof tokenResponse>;

export const errorCodes = [
  'invalid_json',
  'validation_failed',
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'request_timeout',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'idempotency_key_reused',
  'rate_limited',
  'headers_too_large',
  'internal',
  'not_implemented',
  'unavailable',
] as const;

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
