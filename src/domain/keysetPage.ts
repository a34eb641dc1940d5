/**
 * Keyset pages: a list query asks for one row more than the page holds (`limit + 1`); this cuts the page,
 * and the last row of a full page names the next one's cursor (null on the last page).
 */
export function keysetPage<Row, Cursor>(
  rows: readonly Row[],
  limit: number,
  cursorOf: (last: Row) => Cursor,
): { page: Row[]; nextCursor: Cursor | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { page, nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : null };
}
