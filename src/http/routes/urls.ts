import type { Context } from 'koa';
import { notFound } from '../../errors.ts';

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
