import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SESSION_BOUNDS_SQL } from '../../src/db/sessionBounds.ts';

const adminUrl = () => {
  const url = process.env.TEST_ADMIN_URL;
  if (!url) throw new Error('run the tests with `npm test`: it prepares the database (TEST_ADMIN_URL is unset)');
  return url;
};

/**
 * The helpers' own connections carry a query_timeout of their own, a generous one: creating or dropping a
 * database can take seconds on a loaded machine, and the service's process-wide timeout sweep
 * (src/db/queryTimeout.ts, set short by the tests that cut connections) would otherwise close them under the
 * statement, with an error no helper listens for.
 */
const helperClient = (url: string) => new pg.Client({ connectionString: url, query_timeout: 120_000 });

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = helperClient(adminUrl());
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * A fresh, migrated database of this test's own, cloned from the template that `npm test` built, with the
 * session bounds the release step sets (a clone does not inherit the template's role settings).
 */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `task_manager_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((client) => client.query(`create database ${name} template ${process.env.TEST_TEMPLATE}`));
  const url = Object.assign(new URL(adminUrl()), { pathname: `/${name}` }).toString();
  await query(url, SESSION_BOUNDS_SQL);
  return {
    url,
    drop: () => withAdmin((client) => client.query(`drop database if exists ${name} with (force)`)).then(() => {}),
  };
}

/** Plain SQL over a plain connection, for assertions: what an operator with psql would see. */
export async function query<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []) {
  const client = helperClient(url);
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}
