import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { signToken, verifyToken } from '../src/domain/users/tokens.ts';
import { AppError } from '../src/errors.ts';

// 2 s, not 1: `exp` is whole seconds, so a 1 s token signed at x.999 s expires a millisecond later, before its
// second verification on a loaded machine (seen once beside another suite). This one lives 1 to 2 s.
const settings = { secret: 'a-secret-of-at-least-thirty-two-characters', expiresInSeconds: 2 };

test('a token verified once is still refused when it expires, and a forged one never passes for it', async (t) => {
  const token = signToken({ id: 7, role: 'user', generation: 2 }, settings);
  t.like(verifyToken(token, settings), { id: 7, role: 'user', generation: 2 });
  t.like(verifyToken(token, settings), { id: 7, role: 'user', generation: 2 }, 'the second time from the cache');
  // The same claims signed with another key: another text, so checked, and refused.
  const forged = signToken({ id: 7, role: 'admin', generation: 2 }, { ...settings, secret: 'x'.repeat(40) });
  t.throws(() => verifyToken(forged, settings), { instanceOf: AppError, message: 'invalid token' });
  // With another secret the verified entry does not apply either.
  t.throws(() => verifyToken(token, { ...settings, secret: 'y'.repeat(40) }), { instanceOf: AppError });
  // Until the clock is past its `exp` (whole seconds; jsonwebtoken refuses once now >= exp).
  const { exp } = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
  await sleep(Math.max(0, exp * 1000 - Date.now()));
  t.throws(() => verifyToken(token, settings), { instanceOf: AppError, message: 'token expired' });
});
