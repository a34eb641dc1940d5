import type { Task } from './task.ts';

/** The orders a task list comes in: newest first, or soonest due first (ties by id). */
export const taskSorts = ['created', 'due'] as const;
export type TaskSort = (typeof taskSorts)[number];

/**
 * Where the next page starts: after this id (newest first), or after this (due_at, id) (soonest due
 * first). Keyset pages: rows added or deleted meanwhile never shift a page.
 */
export type ListCursor = { readonly id: number; readonly dueAt?: string };

const ID = /^[1-9]\d{0,15}$/;
/** The due time as the API shows it (milliseconds, UTC), then the id: `2026-12-03T09:00:00.000Z_42`. */
const DUE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)_([1-9]\d{0,15})$/;

const FIRST_POSTGRES_MS = Date.parse('0001-01-01T00:00:00.000Z');

/** The cursor of the page that follows `last`, as the `Link` header carries it. */
export const formatListCursor = (sort: TaskSort, last: Task): string =>
  sort === 'due' ? `${last.due_at}_${last.id}` : String(last.id);

/** Null for anything that is not a cursor this service wrote for that order. */
export function parseListCursor(sort: TaskSort, text: string): ListCursor | null {
  if (sort === 'created') return ID.test(text) && Number.isSafeInteger(Number(text)) ? { id: Number(text) } : null;
  const [, dueAt = '', id = ''] = DUE.exec(text) ?? [];
  const ms = Date.parse(dueAt); // NaN for no match, and for a day that does not exist
  // Four digits reach year 0000, which JavaScript's Date takes and Postgres refuses (its first year is 1 AD).
  const exact = ms >= FIRST_POSTGRES_MS && new Date(ms).toISOString() === dueAt;
  return exact && Number.isSafeInteger(Number(id)) ? { id: Number(id), dueAt } : null;
}
