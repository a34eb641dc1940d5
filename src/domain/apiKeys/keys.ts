import { type CommonQueryMethods, type DatabasePool, sql } from 'slonik';
import { z } from 'zod';
import { idColumn } from '../../db/columns.ts';
import { conflict, notFound } from '../../errors.ts';
import { type ApiKey, apiKeyRow, apiKeyScopes, MAX_API_KEYS_PER_USER, newApiKey, type Scope } from './apiKey.ts';

const columns = sql.fragment`id, name, scopes, prefix, created_at, expires_at, last_used_at`;
const countRow = z.object({ count: z.number() });
const credentialRow = z.object({
  id: idColumn,
  user_id: idColumn,
  scopes: z.array(z.enum(apiKeyScopes)),
  expires_at: z.string().nullable(),
});
/** What a request's key check needs: whose key, which scopes, until when (ms; null: no expiry). */
export type KeyCredential = { id: number; userId: number; scopes: readonly Scope[]; expiresAt: number | null };

/**
 * Makes a key for `userId` and gives it out (the only time). The user's row is locked while the keys are
 * counted, so two concurrent creations cannot pass the limit together.
 * @throws AppError 404 when the user is gone; 409 beyond `MAX_API_KEYS_PER_USER`.
 */
export function createApiKey(
  db: DatabasePool,
  userId: number,
  input: { name: string; scopes: Scope[]; expiresInDays?: number | undefined },
): Promise<ApiKey & { key: string }> {
  return db.transaction(async (tx) => {
    const owner = await tx.maybeOne(sql.type(z.object({}))`select 1 from users where id = ${userId} for update`);
    if (!owner) throw notFound('user');
    const count = await tx.oneFirst(
      sql.type(countRow)`select count(*)::int as count from api_keys where user_id = ${userId}`,
    );
    if (count >= MAX_API_KEYS_PER_USER) {
      throw conflict(`at most ${MAX_API_KEYS_PER_USER} API keys per user: revoke one first`);
    }
    const { key, hash, prefix } = newApiKey();
    const created = await tx.one(sql.type(apiKeyRow)`
      insert into api_keys (user_id, name, scopes, prefix, hash, expires_at)
      values (${userId}, ${input.name}, ${sql.array([...new Set(input.scopes)], 'text')}, ${prefix},
              ${sql.binary(hash)},
              ${input.expiresInDays === undefined ? null : sql.fragment`now() + make_interval(days => ${input.expiresInDays})`})
      returning ${columns}`);
    return { ...created, key };
  });
}

/** A user's keys, newest first (never the keys themselves). */
export function listApiKeys(db: CommonQueryMethods, userId: number) {
  return db.any(sql.type(apiKeyRow)`select ${columns} from api_keys where user_id = ${userId} order by id desc`);
}

/**
 * Revokes one of a user's keys: refused at once in every process (the delete's NOTIFY).
 * @throws AppError 404 when it does not exist or is someone else's.
 */
export async function revokeApiKey(db: CommonQueryMethods, userId: number, keyId: number): Promise<void> {
  const { rowCount } = await db.query(
    sql.type(z.object({}))`delete from api_keys where id = ${keyId} and user_id = ${userId}`,
  );
  if (rowCount === 0) throw notFound('API key');
}

/** The key with this hash, as a request's check needs it; null when there is none (never made, or revoked). */
export async function findKeyCredential(db: CommonQueryMethods, hash: Buffer): Promise<KeyCredential | null> {
  const row = await db.maybeOne(sql.type(credentialRow)`
    select id, user_id, scopes, expires_at from api_keys where hash = ${sql.binary(hash)}`);
  return (
    row && {
      id: row.id,
      userId: row.user_id,
      scopes: row.scopes,
      expiresAt: row.expires_at === null ? null : Date.parse(row.expires_at),
    }
  );
}

/** `last_used_at`, to the minute: at most one write a minute per key (the caller keeps that pace). */
export async function markKeyUsed(db: CommonQueryMethods, keyId: number): Promise<void> {
  await db.query(sql.type(z.object({}))`
    update api_keys set last_used_at = date_trunc('minute', now())
    where id = ${keyId} and last_used_at is distinct from date_trunc('minute', now())`);
}
