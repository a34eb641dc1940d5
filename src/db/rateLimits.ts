import { sql } from 'slonik';
import { z } from 'zod';
import type { Connection } from './connection.ts';

/**
 * rate-limiter-flexible's counters (its `rate_limits` table), where the service touches them itself: an
 * account's failure counters go when it is deleted (and with them the lock), keyed as src/http/rateLimit.ts
 * keys them.
 */
export async function forgetRateLimitCounters(db: Connection, exactKey: string, keyPrefix: string): Promise<void> {
  await db.any(sql.type(z.object({}))`
    delete from rate_limits where key = ${exactKey} or starts_with(key, ${keyPrefix})`);
}
