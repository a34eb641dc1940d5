import type { Db as BossDb } from 'pg-boss';
import type { CommonQueryMethods } from 'slonik';
import { rawQuery } from './rawQuery.ts';

const INT8 = 20;
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;

/**
 * Lets pg-boss run its statements on a slonik connection, typically a transaction: `boss.send(name, data,
 * { db: bossDb(tx) })` then commits or rolls back together with the rows written on `tx`. (A web process's
 * pg-boss runs all its statements this way.)
 *
 * Rows come back as node-postgres would give them to pg-boss, not as slonik parses them: timestamps as
 * Dates (slonik: ISO text for timestamptz, epoch milliseconds for timestamp) and int8 as strings (slonik:
 * BigInt).
 */
export function bossDb(connection: CommonQueryMethods): BossDb {
  return {
    async executeSql(text, values = []) {
      const { rows, fields } = await rawQuery(connection, text, values);
      const dates = fields.filter((field) => field.dataTypeId === TIMESTAMPTZ || field.dataTypeId === TIMESTAMP);
      const int8s = fields.filter((field) => field.dataTypeId === INT8);
      if (dates.length === 0 && int8s.length === 0) return { rows };
      return {
        rows: rows.map((row) => {
          const copy = { ...(row as Record<string, unknown>) };
          for (const { name } of dates) {
            const value = copy[name];
            if (typeof value === 'number' || typeof value === 'string') copy[name] = new Date(value);
          }
          for (const { name } of int8s) {
            if (typeof copy[name] === 'bigint') copy[name] = String(copy[name]);
          }
          return copy;
        }),
      };
    },
  };
}
