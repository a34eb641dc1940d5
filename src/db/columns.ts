import { z } from 'zod';

/** `bigint` identity columns arrive as BigInt; ids stay far below 2^53, so a number is exact. */
export const idColumn = z.bigint().transform(Number);

/** `timestamptz` arrives as epoch milliseconds; the API speaks ISO 8601. */
export const timestampColumn = z.number().transform((ms) => new Date(ms).toISOString());
