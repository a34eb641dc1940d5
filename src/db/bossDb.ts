import type { Db as BossDb } from 'pg-boss';
import type { CommonQueryMethods } from 'slonik';
import { rawQuery } from './rawQuery.ts';

/**
 * Lets pg-boss run its statements on a slonik connection, typically a transaction: `boss.send(name, data,
 * { db: bossDb(tx) })` then commits or rolls back together with the rows written on `tx`.
 */
export function bossDb(connection: CommonQueryMethods): BossDb {
  return {
    async executeSql(text, values = []) {
      const { rows } = await rawQuery(connection, text, values);
      return { rows };
    },
  };
}
