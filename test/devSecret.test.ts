import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadOrCreateDevSecret } from '../src/domain/users/devSecret.ts';
import { signToken, verifyToken } from '../src/domain/users/tokens.ts';

test('the development secret is made once, private, and a token signed before a restart verifies after it', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'task-manager-secret-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const secrets = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateDevSecret(dataDir)));
  const [first] = secrets;
  t.deepEqual(new Set(secrets).size, 1, 'concurrent first starts agree on one secret');
  if (!first) throw new Error('no secret');
  t.true(first.length >= 32);
  t.is((await stat(path.join(dataDir, 'jwt-secret'))).mode & 0o777, 0o600);

  const token = signToken({ id: 7, role: 'user' }, { secret: first, expiresInSeconds: 60 });
  const afterRestart = await loadOrCreateDevSecret(dataDir);
  t.like(verifyToken(token, { secret: afterRestart, expiresInSeconds: 60 }), {
    id: 7,
    role: 'user',
    generation: 0,
  });
});
