import type { Db } from 'pg-boss';
import type { Boss } from './queues.ts';

/**
 * Runs `work` in one transaction on pg-boss's own pool (the worker needs no other): it commits when `work`
 * returns and rolls back when it throws. The caller learns of a commit only once it has happened.
 */
export async function inTransaction<T>(boss: Boss, work: (db: Db) => Promise<T>): Promise<T> {
  const db = boss.getDb();
  if (!db.beginTransaction) throw new Error('pg-boss was started without a pool that can open transactions');
  const tx = await db.beginTransaction();
  try {
    const result = await work(tx.db);
    await tx.commit();
    return result;
  } catch (error) {
    await tx.rollback();
    throw error;
  }
}
