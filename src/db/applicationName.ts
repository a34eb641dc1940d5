/**
 * The connection string with `application_name` set, so each role's connections can be counted in
 * `pg_stat_activity` (`select application_name, count(*) ... group by 1`).
 */
export function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', name);
  return parsed.toString();
}
