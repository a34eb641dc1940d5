import { z } from 'zod';
import { idColumn, timestampColumn } from '../../db/columns.ts';

export const roles = ['user', 'admin'] as const;
export type Role = (typeof roles)[number];

/** A user as the API shows it: never a password or a hash. */
export const userRow = z
  .object({
    id: idColumn,
    email: z.string(),
    role: z.enum(roles),
    created_at: timestampColumn,
  })
  .meta({ id: 'User' });
export type User = z.output<typeof userRow>;

/** Who is asking, as a verified token says. */
export type Actor = { readonly id: number; readonly role: Role };
