import { z } from 'zod';
import { idColumn, timestampColumn } from '../../db/columns.ts';

/** A schedule as the API shows it: its pending occurrence's time and id beside it (null while paused). */
export const scheduleRow = z
  .object({
    id: idColumn,
    user_id: idColumn,
    title: z.string(),
    description: z.string(),
    cron: z.string(),
    time_zone: z.string(),
    paused: z.boolean(),
    next_due_at: timestampColumn.nullable().meta({ description: 'When the pending occurrence is due' }),
    next_task_id: idColumn.nullable().meta({ description: 'The pending occurrence: a task like any other' }),
    skipped: z.number().meta({ description: 'Cron times skipped because no worker ran at the time' }),
    created_at: timestampColumn,
    updated_at: timestampColumn,
  })
  .meta({ id: 'Schedule' });
export type Schedule = z.output<typeof scheduleRow>;

/** A schedule's row as the occurrences need it (locked): `fires_at`, the cron time of its pending one. */
export const scheduleStateRow = scheduleRow
  .pick({ id: true, user_id: true, title: true, description: true, cron: true, time_zone: true, paused: true })
  .extend({ fires_at: timestampColumn.nullable() });
export type ScheduleState = z.output<typeof scheduleStateRow>;
