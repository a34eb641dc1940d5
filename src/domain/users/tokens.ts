import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { unauthorized } from '../../errors.ts';
import { type Actor, roles } from './user.ts';

export type TokenSettings = { readonly secret: string; readonly expiresInSeconds: number };

const claims = z.object({ sub: z.string().regex(/^\d+$/), role: z.enum(roles), iat: z.number(), exp: z.number() });

// Given a string, jsonwebtoken first tries to parse it as a public key, which throws, on every call; a secret
// KeyObject skips that. One per settings object, made on first use.
const keys = new WeakMap<TokenSettings, KeyObject>();
function keyOf(settings: TokenSettings): KeyObject {
  let key = keys.get(settings);
  if (!key) {
    key = createSecretKey(Buffer.from(settings.secret, 'utf8'));
    keys.set(settings, key);
  }
  return key;
}

export function signToken(actor: Actor, settings: TokenSettings): string {
  return jwt.sign({ role: actor.role }, keyOf(settings), {
    algorithm: 'HS256',
    subject: String(actor.id),
    expiresIn: settings.expiresInSeconds,
  });
}

/**
 * Verifies an HS256 token (the algorithm is pinned: `none` and RS/ES tokens are refused).
 * @throws AppError 401 with a message that says what was wrong.
 */
export function verifyToken(token: string, settings: TokenSettings): Actor {
  let payload: unknown;
  try {
    payload = jwt.verify(token, keyOf(settings), { algorithms: ['HS256'] });
  } catch (error) {
    if (error instanceof jwt.TokenExpiredError) throw unauthorized('token expired');
    throw unauthorized('invalid token');
  }
  const parsed = claims.safeParse(payload);
  if (!parsed.success) throw unauthorized('invalid token');
  return { id: Number(parsed.data.sub), role: parsed.data.role };
}
