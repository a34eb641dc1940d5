import { z } from 'zod';

// Each column's `override` is what it becomes in a response, for the OpenAPI document: the row types of the
// domain are the response schemas (http/openapi.ts), not a copy of them.

/** `bigint` identity columns arrive as BigInt; ids stay far below 2^53, so a number is exact. */
export const idColumn = z
  .bigint()
  .transform(Number)
  .meta({ override: { type: 'integer', minimum: 1 } });

/** `timestamptz` arrives as epoch milliseconds; the API speaks ISO 8601. */
export const timestampColumn = z
  .number()
  .transform((ms) => new Date(ms).toISOString())
  .meta({ override: { type: 'string', format: 'date-time' } });
