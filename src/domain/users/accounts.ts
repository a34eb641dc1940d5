import bcrypt from 'bcrypt';
import { type CommonQueryMethods, type DatabasePool, UniqueIntegrityConstraintViolationError } from 'slonik';
import { conflict, forbidden, unauthorized } from '../../errors.ts';
import { findCredentialsByEmail, insertBootstrapAdmin, insertUser, lockPasswordHash, revokeTokens } from './queries.ts';
import { signToken, type TokenSettings } from './tokens.ts';
import type { Actor, Role, User } from './user.ts';

export type AccountSettings = TokenSettings & { readonly bcryptCost: number };

/** bcrypt reads at most 72 bytes of a password. */
export const MAX_PASSWORD_BYTES = 72;

/** Emails compare trimmed and case-insensitively; they are stored that way. */
export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/**
 * Registers a user. `role: "admin"` is granted while no admin exists yet (bootstrap), or to a request
 * made with an admin's token.
 * @throws AppError 409 for a taken email, 403 for an admin role that may not be granted.
 */
export async function register(
  db: DatabasePool,
  settings: AccountSettings,
  input: { email: string; password: string; role: Role },
  actor: Actor | null,
): Promise<User> {
  const email = normalizeEmail(input.email);
  const passwordHash = await bcrypt.hash(input.password, settings.bcryptCost);
  try {
    if (input.role === 'user' || actor?.role === 'admin') {
      return await insertUser(db, { email, passwordHash, role: input.role });
    }
    const admin = await insertBootstrapAdmin(db, { email, passwordHash });
    if (admin) return admin;
    throw forbiddenAdmin();
  } catch (error) {
    if (error instanceof UniqueIntegrityConstraintViolationError) {
      if (error.constraint === 'users_one_bootstrap_admin') throw forbiddenAdmin();
      throw conflict('an account with this email already exists');
    }
    throw error;
  }
}

const forbiddenAdmin = () => forbidden('only an admin may create another admin: send the request with an admin token');

// Compared against when the email is unknown, so both answers take one bcrypt's time (no timing oracle).
const dummyHashes = new Map<number, Promise<string>>();
const dummyHash = (cost: number) => {
  let hash = dummyHashes.get(cost);
  if (!hash) {
    hash = bcrypt.hash('not a real password', cost);
    dummyHashes.set(cost, hash);
  }
  return hash;
};

/** bcrypt ignores what follows byte 72: a longer password is not the one that was registered. */
async function passwordMatches(password: string, hash: string): Promise<boolean> {
  const matches = await bcrypt.compare(password, hash);
  return matches && Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES;
}

/**
 * Checks an email and password and returns a signed token.
 * @throws AppError 401, the same for an unknown email and a wrong password.
 */
export async function login(
  db: DatabasePool,
  settings: AccountSettings,
  input: { email: string; password: string },
): Promise<{ token: string; token_type: 'Bearer'; expires_in: number }> {
  const user = await findCredentialsByEmail(db, normalizeEmail(input.email));
  const matches = await passwordMatches(input.password, user?.password_hash ?? (await dummyHash(settings.bcryptCost)));
  if (!user || !matches) throw unauthorized('wrong email or password');
  return {
    token: signToken({ id: user.id, role: user.role, generation: user.token_generation }, settings),
    token_type: 'Bearer',
    expires_in: settings.expiresInSeconds,
  };
}

/**
 * Checks the actor's password, with their row locked until the transaction `tx` ends (a concurrent
 * change of password waits for this one).
 * @throws AppError 401 for a wrong password, or when the account is gone.
 */
export async function assertPassword(tx: CommonQueryMethods, actor: Actor, password: string): Promise<void> {
  const hash = await lockPasswordHash(tx, actor.id);
  if (hash === null) throw unauthorized('the account of this token no longer exists');
  if (!(await passwordMatches(password, hash))) throw unauthorized('wrong password');
}

/**
 * Changes the actor's password and ends every token signed before (this request's included): the user
 * logs in again with the new password.
 * @throws AppError 401 for a wrong current password.
 */
export async function changePassword(
  db: DatabasePool,
  settings: AccountSettings,
  actor: Actor,
  input: { current_password: string; new_password: string },
): Promise<void> {
  const passwordHash = await bcrypt.hash(input.new_password, settings.bcryptCost);
  await db.transaction(async (tx) => {
    await assertPassword(tx, actor, input.current_password);
    await revokeTokens(tx, actor.id, passwordHash);
  });
}

/** Logs the actor out everywhere: every token signed so far is refused from now on. */
export async function logout(db: DatabasePool, actor: Actor): Promise<void> {
  await revokeTokens(db, actor.id);
}
