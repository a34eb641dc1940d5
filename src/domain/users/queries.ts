import { type CommonQueryMethods, sql } from 'slonik';
import { z } from 'zod';
import { idColumn } from '../../db/columns.ts';
import { type Role, roles, userRow } from './user.ts';

const userColumns = sql.fragment`id, email, role, created_at`;
// Row types are made once, here: zod compiles a parser for each schema object on its first use, so a
// schema built inside a function would be compiled again on every call.
const credentialsRow = userRow.extend({ password_hash: z.string(), token_generation: z.number() });
const actorRow = z.object({ id: idColumn, role: z.enum(roles), token_generation: z.number() });
const passwordRow = z.object({ password_hash: z.string() });
const jobIdRow = z.object({ job_id: z.string().nullable() });
const idRow = z.object({ id: idColumn });

export function insertUser(db: CommonQueryMethods, user: { email: string; passwordHash: string; role: Role }) {
  return db.one(sql.type(userRow)`
    insert into users (email, password_hash, role)
    values (${user.email}, ${user.passwordHash}, ${user.role})
    returning ${userColumns}`);
}

/**
 * Inserts the first admin, only while no admin exists. Null when one already does; a racing twin fails
 * on the `users_one_bootstrap_admin` unique index.
 */
export function insertBootstrapAdmin(db: CommonQueryMethods, user: { email: string; passwordHash: string }) {
  return db.maybeOne(sql.type(userRow)`
    insert into users (email, password_hash, role, bootstrap_admin)
    select ${user.email}, ${user.passwordHash}, 'admin', true
    where not exists (select 1 from users where role = 'admin')
    returning ${userColumns}`);
}

export function findUserById(db: CommonQueryMethods, id: number) {
  return db.maybeOne(sql.type(userRow)`select ${userColumns} from users where id = ${id}`);
}

export function findCredentialsByEmail(db: CommonQueryMethods, email: string) {
  return db.maybeOne(sql.type(credentialsRow)`
    select ${userColumns}, password_hash, token_generation from users where email = ${email}`);
}

/** Who a token's subject is now: its role and token generation as stored, or null when the account is gone. */
export function findActor(db: CommonQueryMethods, id: number) {
  return db.maybeOne(sql.type(actorRow)`select id, role, token_generation from users where id = ${id}`);
}

/** The user's password hash, with the row locked until the transaction ends (null when gone). */
export function lockPasswordHash(db: CommonQueryMethods, id: number) {
  return db.maybeOneFirst(sql.type(passwordRow)`select password_hash from users where id = ${id} for update`);
}

/** Ends every token signed so far (and, with `passwordHash`, changes the password). */
export function revokeTokens(db: CommonQueryMethods, id: number, passwordHash?: string) {
  return db.query(sql.type(z.object({}))`
    update users
    set token_generation = token_generation + 1,
        password_hash = coalesce(${passwordHash ?? null}, password_hash)
    where id = ${id}`);
}

export type UserFilter = { role?: Role; before?: number; limit: number };

/** Newest first, keyset-paginated on the id, as tasks are. */
export function listUsers(db: CommonQueryMethods, filter: UserFilter) {
  const conditions = [sql.fragment`true`];
  if (filter.role !== undefined) conditions.push(sql.fragment`role = ${filter.role}`);
  if (filter.before !== undefined) conditions.push(sql.fragment`id < ${filter.before}`);
  return db.any(sql.type(userRow)`
    select ${userColumns} from users
    where ${sql.join(conditions, sql.fragment` and `)}
    order by id desc
    limit ${filter.limit}`);
}

/**
 * Locks every admin's row until the transaction ends and returns their ids. Whoever would remove an admin
 * (demote, delete) takes these locks first, so two such changes run one after the other and the second
 * sees the first's outcome: the last admin is never removed by two changes that each saw another.
 */
export function lockAdmins(db: CommonQueryMethods) {
  return db.anyFirst(sql.type(idRow)`select id from users where role = 'admin' order by id for update`);
}

/** Locks the user's row until the transaction ends; null when gone. */
export function lockUser(db: CommonQueryMethods, id: number) {
  return db.maybeOne(sql.type(userRow)`select ${userColumns} from users where id = ${id} for update`);
}

/** A demoted admin is no longer the bootstrap admin either (a check holds the two together). */
export function setRole(db: CommonQueryMethods, id: number, role: Role) {
  return db.one(sql.type(userRow)`
    update users set role = ${role}, bootstrap_admin = bootstrap_admin and ${role} = 'admin'
    where id = ${id}
    returning ${userColumns}`);
}

/** The jobs of the user's tasks, with the tasks locked until the transaction ends. */
export function lockJobsOfUser(db: CommonQueryMethods, userId: number) {
  return db.anyFirst(sql.type(jobIdRow)`select job_id from tasks where user_id = ${userId} for update`);
}

/** Deletes the user; their tasks and idempotency keys go with them (`on delete cascade`). */
export function deleteUserRow(db: CommonQueryMethods, id: number) {
  return db.query(sql.type(z.object({}))`delete from users where id = ${id}`);
}
