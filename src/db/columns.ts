import { z } from 'zod';

// Each column's `override` is what it becomes in a response, for the OpenAPI document: the row types of the
// domain are the response schemas (http/openapi.ts), not a copy of them.

/** `bigint` identity columns arrive as BigInt; ids stay far below 2^53, so a number is exact. */
export const idColumn = z
  .bigint()
  .transform(Number)
  .meta({ override: { type: 'integer', minimum: 1 } });

/** `timestamptz` arrives as ISO 8601 text in UTC, as the API speaks it (`timestamptzToIso`, the pool's parser). */
export const timestampColumn = z.string().meta({ override: { type: 'string', format: 'date-time' } });

const TIMESTAMPTZ = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/;

/**
 * Postgres's text for a `timestamptz` (DateStyle ISO) as ISO 8601 in UTC with milliseconds, the API's
 * format, whatever the session's TimeZone. A session in UTC (the usual) takes a fast path of string
 * slicing, with no Date per value; any other offset (historical ones have seconds, which Date.parse
 * refuses) is read field by field. Microseconds are cut to milliseconds.
 */
export function timestamptzToIso(text: string): string {
  // "2026-12-02 16:33:28.123456+00", the fraction optional: a four-digit year, a space, UTC.
  if (text.length >= 22 && text.charCodeAt(4) === 45 && text.charCodeAt(10) === 32 && text.endsWith('+00')) {
    const fraction = text.length > 22 ? text.slice(20, -3) : '';
    return `${text.slice(0, 10)}T${text.slice(11, 19)}.${`${fraction}000`.slice(0, 3)}Z`;
  }
  const parts = TIMESTAMPTZ.exec(text);
  if (!parts) throw new TypeError(`not a timestamptz the API can show: ${text}`);
  const [, year, month, day, hour, minute, second, fraction = '', sign, offsetH, offsetM = '0', offsetS = '0'] =
    parts.map((part) => part ?? '');
  const date = new Date(0);
  date.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  date.setUTCHours(Number(hour), Number(minute), Number(second), Number(`${fraction}000`.slice(0, 3)));
  const offsetMs = (Number(offsetH) * 3600 + Number(offsetM) * 60 + Number(offsetS)) * 1000;
  return new Date(date.getTime() - (sign === '-' ? -offsetMs : offsetMs)).toISOString();
}
