import jwt from 'jsonwebtoken';
import { z } from 'zod';
import { unauthorized } from '../../errors.ts';
import { type Actor, roles } from './user.ts';

export type TokenSettings = { readonly secret: string; readonly expiresInSeconds: number };

const claims = z.object({ sub: z.string().regex(/^\d+$/), role: z.enum(roles), iat: z.number(), exp: z.number() });

export function signToken(actor: Actor, settings: TokenSettings): string {
  return jwt.sign({ role: actor.role }, settings.secret, {
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
    payload = jwt.verify(token, settings.secret, { algorithms: ['HS256'] });
  } catch (error) {
    if (error instanceof jwt.TokenExpiredError) throw unauthorized('token expired');
    throw unauthorized('invalid token');
  }
  const parsed = claims.safeParse(payload);
  if (!parsed.success) throw unauthorized('invalid token');
  return { id: Number(parsed.data.sub), role: parsed.data.role };
}
