import { type CommonQueryMethods, sql } from 'slonik';
import { z } from 'zod';
import { idColumn } from '../../db/columns.ts';
import { type Role, roles, userRow } from './user.ts';

const userColumns = sql.fragment`id, email, role, created_at`;
// Row types are made once, here: zod compiles a parser for each schema object on its first use, so a
// schema built inside a function would be compiled again on every call.
const credentialsRow = userRow.extend({ password_hash: z.string() });
const actorRow = z.object({ id: idColumn, role: z.enum(roles) });

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
    select ${userColumns}, password_hash from users where email = ${email}`);
}

/** Who a token's subject is now: its role as stored, or null when the account is gone. */
export function findActor(db: CommonQueryMethods, id: number) {
  return db.maybeOne(sql.type(actorRow)`select id, role from users where id = ${id}`);
}
