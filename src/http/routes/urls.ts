import type { Context } from 'koa';
import { AppError, notFound } from '../../errors.ts';

/**
 * The `:id` of a path as a number. One that is not a positive integer names nothing: a 404, like an
 * unknown id (never a 400 that would say more).
 */
export function pathId(ctx: Context, what: string): number {
  const id = ctx.params?.id ?? '';
  if (!/^[1-9]\d{0,14}$/.test(id)) throw notFound(what);
  return Number(id);
}

/**
 * The `Link` header of a keyset page (RFC 8288): the same query, with the next page's cursor.
 * Parameters left undefined are left out.
 */
export function nextLink(path: string, query: Record<string, string | number | undefined>): string {
  const next = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) next.set(key, String(value));
  }
  return `<${path}?${next}>; rel="next"`;
}

/**
 * The `Idempotency-Key` header (IETF httpapi draft): a string of 1 to 255 visible ASCII characters, quoted
 * as a structured-field string or bare. Undefined when absent.
 * @throws AppError 400 for a malformed key.
 */
export function idempotencyKeyOf(ctx: Context): string | undefined {
  const header = ctx.get('Idempotency-Key');
  if (header === '') return undefined;
  const key = /^"(.*)"$/.exec(header)?.[1] ?? header;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new AppError(400, 'validation_failed', 'the request has invalid fields', [
      { field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' },
    ]);
  }
  return key;
}
