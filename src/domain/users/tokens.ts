import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { unauthorized } from '../../errors.ts';
import { type Actor, roles } from './user.ts';

export type TokenSettings = { readonly secret: string; readonly expiresInSeconds: number };

const claims = z.object({
  sub: z.string().regex(/^\d+$/),
  role: z.enum(roles),
  // The user's token generation when it was signed; tokens from before revocation existed have none.
  gen: z.number().int().min(0).default(0),
  iat: z.number(),
  exp: z.number(),
});

/**
 * What a verified token says: who, with which role, signed in which of the user's token generations, and
 * until when (its `exp`, in milliseconds: a wait or a stream it opened ends then).
 */
export type Claims = Actor & { readonly generation: number; readonly expiresAt: number };

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

/** Signs a token of `claims`; a generation left out is 0, a user's first. */
export function signToken(claims: Actor & { readonly generation?: number }, settings: TokenSettings): string {
  return jwt.sign({ role: claims.role, gen: claims.generation ?? 0 }, keyOf(settings), {
    algorithm: 'HS256',
    subject: String(claims.id),
    expiresIn: settings.expiresInSeconds,
  });
}

/**
 * Verifies an HS256 token (the algorithm is pinned: `none` and RS/ES tokens are refused).
 * @throws AppError 401 with a message that says what was wrong.
 */
export function verifyToken(token: string, settings: TokenSettings): Claims {
  const known = verified.get(token);
  if (known && known.settings === settings && Date.now() < known.expiresAt) return known.claims;
  const { claims, expiresAt } = verifyAnew(token, settings);
  if (verified.size >= MAX_VERIFIED) verified.delete(verified.keys().next().value as string);
  verified.set(token, { settings, claims, expiresAt });
  return claims;
}

/**
 * Tokens already verified, by their exact text: a client sends the same token with every request, and
 * its signature was checked once (an HMAC and two JSON parses each time, before). The same text is the
 * same signature, so nothing is taken on trust; an entry is used only before the token's `exp`, and
 * whether the token's user still accepts it is read on every request all the same (auth.ts).
 */
const verified = new Map<string, { settings: TokenSettings; claims: Claims; expiresAt: number }>();
const MAX_VERIFIED = 10_000;

/** The token's claims, its signature checked, and its `exp` in milliseconds. */
function verifyAnew(token: string, settings: TokenSettings): { claims: Claims; expiresAt: number } {
  let payload: unknown;
  try {
    payload = jwt.verify(token, keyOf(settings), { algorithms: ['HS256'] });
  } catch (error) {
    if (error instanceof jwt.TokenExpiredError) throw unauthorized('token expired');
    throw unauthorized('invalid token');
  }
  const parsed = claims.safeParse(payload);
  if (!parsed.success) throw unauthorized('invalid token');
  const expiresAt = parsed.data.exp * 1000;
  return {
    claims: { id: Number(parsed.data.sub), role: parsed.data.role, generation: parsed.data.gen, expiresAt },
    expiresAt,
  };
}
