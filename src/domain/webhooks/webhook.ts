import { z } from 'zod';
import { idColumn, timestampColumn } from '../../db/columns.ts';

export const webhookEventTypes = ['task.created', 'task.completed', 'task.deleted'] as const;
export type WebhookEventType = (typeof webhookEventTypes)[number];

/** An endpoint as the API shows it: never its secret (only creation and rotation give one out). */
export const endpointRow = z
  .object({
    id: idColumn,
    url: z.string(),
    events: z.array(z.enum(webhookEventTypes)),
    description: z.string(),
    enabled: z.boolean().meta({
      description: 'False when its owner turned it off, after it answered 410 Gone, or after 5 days of failed attempts',
    }),
    disabled_reason: z
      .string()
      .nullable()
      .meta({ description: 'Why it is disabled (null while enabled); `PATCH {"enabled": true}` turns it back on' }),
    created_at: timestampColumn,
  })
  .meta({ id: 'WebhookEndpoint' });
export type Endpoint = z.output<typeof endpointRow>;

const deliveryStatuses = ['pending', 'succeeded', 'failed'] as const;

/** One event sent (or to be sent) to one endpoint, with what came back. */
export const deliveryRow = z
  .object({
    id: z.string().meta({ description: 'The webhook-id header: the same on every attempt' }),
    event_type: z.enum(webhookEventTypes),
    task_id: idColumn,
    status: z.enum(deliveryStatuses),
    attempts: z.number().int(),
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    last_response: z.string().nullable().meta({ description: 'The first kilobyte of the last answer' }),
    next_attempt_at: timestampColumn.nullable(),
    created_at: timestampColumn,
    delivered_at: timestampColumn.nullable(),
  })
  .meta({ id: 'WebhookDelivery' });
export type Delivery = z.output<typeof deliveryRow>;

/** At most this many endpoints per user. */
export const MAX_ENDPOINTS_PER_USER = 10;
/** During a rotation, the previous secret signs beside the new one this long. */
export const ROTATION_OVERLAP_HOURS = 24;
