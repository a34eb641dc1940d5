/**
 * Token verification per second with the secret as a string (jsonwebtoken tries a public-key parse first,
 * which throws) and as a secret KeyObject (what src/domain/users/tokens.ts hands it). Rounds of the two
 * are interleaved, so a noisy machine slows both alike; medians are printed.
 */
import { createSecretKey } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { median, writeReport } from './report.ts';

const secret = 'bench-secret-that-is-at-least-32-characters';
const key = createSecretKey(Buffer.from(secret));
const token = jwt.sign({ role: 'user' }, secret, { algorithm: 'HS256', subject: '1', expiresIn: 3600 });
const perRound = 5_000;
const rate = (verifyWith: string | typeof key) => {
  const started = performance.now();
  for (let i = 0; i < perRound; i++) jwt.verify(token, verifyWith, { algorithms: ['HS256'] });
  return perRound / ((performance.now() - started) / 1000);
};
const asString: number[] = [];
const asKey: number[] = [];
for (let round = 0; round < 7; round++) {
  asString.push(rate(secret));
  asKey.push(rate(key));
}
console.log(
  `\nJWT verify (HS256), median of 7 interleaved rounds: string secret ${median(asString).toFixed(0)}/s, ` +
    `KeyObject ${median(asKey).toFixed(0)}/s (x${(median(asKey) / median(asString)).toFixed(2)})`,
);
await writeReport('jwt', { stringSecretPerSecond: median(asString), keyObjectPerSecond: median(asKey) });
