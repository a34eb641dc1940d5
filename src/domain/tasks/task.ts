import { z } from 'zod';
import { idColumn, timestampColumn } from '../../db/columns.ts';

export const taskStatuses = ['pending', 'completed'] as const;
export type TaskStatus = (typeof taskStatuses)[number];

/** A task as stored and as the API shows it. */
export const taskRow = z
  .object({
    id: idColumn,
    user_id: idColumn,
    title: z.string(),
    description: z.string(),
    status: z.enum(taskStatuses),
    due_at: timestampColumn,
    completed_at: timestampColumn.nullable(),
    created_at: timestampColumn,
    updated_at: timestampColumn,
    job_id: z
      .string()
      .nullable()
      .meta({ description: "Its pg-boss job: `select * from pgboss.job where id = '<job_id>'`" }),
    schedule_id: idColumn.nullable().meta({
      description:
        'The schedule this task is an occurrence of (null for a one-off task, or once the schedule is deleted)',
    }),
  })
  .meta({ id: 'Task' });
export type Task = z.output<typeof taskRow>;

/** When a task is due, as a request says it: at a time, or this many seconds from now (the database's). */
export type Due = { readonly at: Date } | { readonly delaySeconds: number };
