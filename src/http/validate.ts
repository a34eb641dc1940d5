import type { z } from 'zod';
import { AppError } from '../errors.ts';

/**
 * Parses input with a zod schema.
 * @throws AppError 400 `validation_failed` whose details name each bad field.
 */
export function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : '(body)',
    message: issue.message,
  }));
  throw new AppError(400, 'validation_failed', 'the request has invalid fields', details);
}
