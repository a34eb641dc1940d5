import type { DatabasePool, DatabaseTransactionConnection } from 'slonik';
import { bossDb } from '../../db/bossDb.ts';
import { type Boss, COMPLETE_TASK } from '../../db/queues.ts';
import { conflict, forbidden, notFound } from '../../errors.ts';
import { keysetPage } from '../keysetPage.ts';
import { deleteUserRow, findUserById, listUsers, lockAdmins, lockJobsOfUser, lockUser, setRole } from './queries.ts';
import type { Actor, Role, User } from './user.ts';

export type AdministrationDeps = { readonly db: DatabasePool; readonly boss: Boss };

/** @throws AppError 403 for anyone but an admin. */
export function assertAdmin(actor: Actor): void {
  if (actor.role !== 'admin') throw forbidden('only an admin may do this');
}

/**
 * One page of users, newest first, and the cursor of the next page (null on the last one).
 * @throws AppError 403 for anyone but an admin.
 */
export async function listUserPage(
  db: DatabasePool,
  actor: Actor,
  query: { limit: number; role?: Role | undefined; cursor?: number | undefined },
): Promise<{ users: User[]; nextCursor: number | null }> {
  assertAdmin(actor);
  const rows = await listUsers(db, {
    limit: query.limit + 1, // one more than asked tells whether there is a next page
    ...(query.role !== undefined && { role: query.role }),
    ...(query.cursor !== undefined && { before: query.cursor }),
  });
  const { page, nextCursor } = keysetPage(rows, query.limit, (last) => last.id);
  return { users: page, nextCursor };
}

/** @throws AppError 403 for anyone but an admin, 404 when there is no such user. */
export async function getUser(db: DatabasePool, actor: Actor, id: number): Promise<User> {
  assertAdmin(actor);
  const user = await findUserById(db, id);
  if (!user) throw notFound('user');
  return user;
}

/**
 * Locks the user `id` for a change that removes them, or their admin role: an admin's removal first locks
 * every admin (see `lockAdmins`), and is refused when they are the last one.
 * @throws AppError 404 when there is no such user, 409 when they are the last admin.
 */
async function lockForRemoval(tx: DatabaseTransactionConnection, id: number, what: string): Promise<User> {
  const admins = await lockAdmins(tx);
  const user = await lockUser(tx, id);
  if (!user) throw notFound('user');
  if (user.role === 'admin' && !admins.some((admin) => admin !== id)) {
    throw conflict(`the last admin cannot be ${what}: make another user an admin first`);
  }
  return user;
}

/**
 * Gives a user another role. Demoting the last admin is refused; demotions racing each other take turns.
 * @throws AppError 403 for anyone but an admin, 404 when there is no such user, 409 for the last admin.
 */
export function changeRole(deps: AdministrationDeps, actor: Actor, id: number, role: Role): Promise<User> {
  assertAdmin(actor);
  return deps.db.transaction(async (tx) => {
    const user = role === 'admin' ? await lockUser(tx, id) : await lockForRemoval(tx, id, 'demoted');
    if (!user) throw notFound('user');
    return user.role === role ? user : setRole(tx, id, role);
  });
}

/**
 * Deletes a user in one transaction: their tasks with their jobs, their idempotency keys, and the account;
 * resolves with the account as it was. Users may delete themselves, admins anyone. The tasks' deletions are
 * recorded as task events, as any deletion is; the user's tokens are refused at once (their row is gone)
 * and their open streams and waits end (a NOTIFY at commit).
 * @throws AppError 403 for another user's account asked by a non-admin, 404 when there is no such user,
 * 409 when they are the last admin.
 */
export function deleteUser(deps: AdministrationDeps, actor: Actor, id: number): Promise<User> {
  if (actor.id !== id) assertAdmin(actor);
  return deps.db.transaction(async (tx) => {
    const user = await lockForRemoval(tx, id, 'deleted');
    // Each task's row, then its job: the order every change to a task takes (see updateTask).
    const jobIds = (await lockJobsOfUser(tx, id)).filter((jobId): jobId is string => jobId !== null);
    if (jobIds.length > 0) await deps.boss.deleteJob(COMPLETE_TASK, jobIds, { db: bossDb(tx) });
    await deleteUserRow(tx, id);
    return user;
  });
}
