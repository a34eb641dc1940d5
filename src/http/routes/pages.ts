/**
 * The `Link` header of a keyset page (RFC 8288): the same query, with the next page's cursor.
 * Parameters left undefined are left out.
 */
export function nextLink(path: string, query: Record<string, string | number | undefined>): string {
  const next = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) next.set(key, String(value));
  }
  return `<${path}?${next}>; rel="next"`;
}
