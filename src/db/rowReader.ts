import type { z } from 'zod';
import { idColumn } from './columns.ts';

type Row = Record<string, unknown>;
type Column = { name: string; accepts: (value: unknown) => boolean; id: boolean; nullable: boolean };
export type RowReader = (row: Row) => Row | undefined;

const readers = new WeakMap<object, RowReader | null>();

/**
 * A row check worked out once from a row type, for the row types that are flat objects of plain columns
 * (string, finite number, boolean, enum, `idColumn`, each maybe nullable): every value is checked as zod
 * would check it, but with no zod call per value, which was the result parser's whole cost on a list of
 * tasks. The reader gives zod's output (the type's keys in its order, ids as numbers, other columns
 * dropped), or undefined when the row does not match; the caller then lets zod say what is wrong. It
 * accepts nothing zod refuses. Null for any other row type (zod checks those itself).
 */
export function rowReader(schema: z.ZodType): RowReader | null {
  let reader = readers.get(schema);
  if (reader === undefined) {
    reader = compile(schema);
    readers.set(schema, reader);
  }
  return reader;
}

function compile(schema: z.ZodType): RowReader | null {
  const def = (schema as Partial<z.ZodType>)._zod?.def as
    | { type: string; shape?: Record<string, z.ZodType>; catchall?: unknown; checks?: [] }
    | undefined;
  if (!def) return null; // a Standard Schema that is not zod's
  // Not an object, or one with refinements, or one that keeps or refuses other keys: zod's to check.
  if (def.type !== 'object' || !def.shape || def.catchall !== undefined || (def.checks?.length ?? 0) > 0) return null;
  const columns: Column[] = [];
  for (const [name, type] of Object.entries(def.shape)) {
    const column = columnOf(name, type);
    if (!column) return null;
    columns.push(column);
  }
  return (row) => {
    const out: Row = {};
    for (const { name, accepts, id, nullable } of columns) {
      const value = row[name];
      if (value === null && nullable) out[name] = null;
      else if (!accepts(value)) return undefined;
      else out[name] = id ? Number(value) : value;
    }
    return out;
  };
}

function columnOf(name: string, type: z.ZodType): Column | null {
  let inner = type;
  let nullable = false;
  if (inner._zod.def.type === 'nullable') {
    nullable = true;
    inner = (inner._zod.def as unknown as { innerType: z.ZodType }).innerType;
  }
  // idColumn is a bigint piped into Number: recognised by identity, not by its shape.
  if (inner === idColumn) return { name, accepts: (value) => typeof value === 'bigint', id: true, nullable };
  const def = inner._zod.def as { type: string; checks?: unknown[]; entries?: Record<string, unknown> };
  if (def.checks !== undefined && def.checks.length > 0) return null; // min, max, formats...: zod's to check
  switch (def.type) {
    case 'string':
      return { name, accepts: (value) => typeof value === 'string', id: false, nullable };
    case 'number':
      return { name, accepts: Number.isFinite, id: false, nullable };
    case 'boolean':
      return { name, accepts: (value) => typeof value === 'boolean', id: false, nullable };
    case 'enum': {
      const values = new Set(Object.values(def.entries ?? {}));
      return { name, accepts: (value) => typeof value === 'string' && values.has(value), id: false, nullable };
    }
    default:
      return null;
  }
}
