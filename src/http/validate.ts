import type { z } from 'zod';
import { AppError } from '../errors.ts';

type Detail = { field: string; message: string };

/**
 * Parses input with a zod schema. Arrays and objects may nest at most `MAX_DEPTH` levels. Strings anywhere in the input must be storable as they are: Postgres
 * refuses NUL, and a lone UTF-16 surrogate cannot be encoded (it would silently become U+FFFD, so two
 * different passwords would match).
 * @throws AppError 400 `validation_failed` whose details name each bad field.
 */
export function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  if (nestingDepth(input, MAX_DEPTH) > MAX_DEPTH) {
    throw invalid([
      { field: '(body)', message: `must not nest arrays and objects more than ${MAX_DEPTH} levels deep` },
    ]);
  }
  const unstorable = unstorableStrings(input, []);
  if (unstorable.length > 0) throw invalid(unstorable);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw invalid(
    result.error.issues.map((issue) => ({
      field: issue.path.length > 0 ? issue.path.join('.') : '(body)',
      message: issue.message,
    })),
  );
}

/** No request of this API nests deeper than a few levels; a body of thousands would exhaust a recursive walk. */
export const MAX_DEPTH = 32;

/** How deeply arrays and objects nest in `value`, counted without recursion and only up to `limit + 1`. */
function nestingDepth(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth] = item;
    if (node === null || typeof node !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > limit) return deepest;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return deepest;
}

const invalid = (details: Detail[]) =>
  new AppError(400, 'validation_failed', 'the request has invalid fields', details);

function unstorableStrings(value: unknown, path: string[]): Detail[] {
  const field = path.length > 0 ? path.join('.') : '(body)';
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return [{ field, message: 'must not contain the NUL character' }];
    if (!value.isWellFormed()) return [{ field, message: 'must be valid Unicode (it has a lone surrogate)' }];
    return [];
  }
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, item]) => unstorableStrings(item, [...path, key]));
}
