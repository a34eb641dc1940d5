import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import { idColumn, timestampColumn } from '../../db/columns.ts';

/**
 * An API key is `tm_` + 43 base62 characters (32 bytes from the CSPRNG) + 6 base62 characters of their
 * CRC32, as GitHub's token format does: a secret scanner, and this service, can tell a real key from noise
 * without a lookup. Only a SHA-256 of it is kept: for a random 256-bit secret a fast hash is right (no
 * guessing can be slowed down further; bcrypt is for passwords people choose).
 */

export const apiKeyScopes = [
  'tasks:read',
  'tasks:write',
  'schedules:read',
  'schedules:write',
  'webhooks:read',
  'webhooks:write',
] as const;
export type Scope = (typeof apiKeyScopes)[number];

/** At most this many keys per user. */
export const MAX_API_KEYS_PER_USER = 20;
/** How many characters of a key (`tm_` included) name it in lists and logs. */
const PREFIX_LENGTH = 10;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SECRET_CHARS = 43; // 62^43 > 2^256
const CHECKSUM_CHARS = 6; // 62^6 > 2^32
export const API_KEY_PREFIX = 'tm_';
const KEY = new RegExp(`^tm_([0-9A-Za-z]{${SECRET_CHARS}})([0-9A-Za-z]{${CHECKSUM_CHARS}})$`);

function base62(value: bigint, width: number): string {
  let text = '';
  for (let rest = value; rest > 0n; rest /= 62n) text = ALPHABET[Number(rest % 62n)] + text;
  return text.padStart(width, '0');
}

const checksumOf = (secret: string) => base62(BigInt(crc32(secret)), CHECKSUM_CHARS);

/** A new key: shown once to its owner; `hash` and `prefix` are what is stored. */
export function newApiKey(): { key: string; hash: Buffer; prefix: string } {
  const secret = base62(BigInt(`0x${randomBytes(32).toString('hex')}`), SECRET_CHARS);
  const key = `${API_KEY_PREFIX}${secret}${checksumOf(secret)}`;
  return { key, hash: hashApiKey(key), prefix: key.slice(0, PREFIX_LENGTH) };
}

/** Whether `text` is a key this service could have made: its shape and its checksum, no lookup. */
export function isWellFormedApiKey(text: string): boolean {
  const [, secret, checksum] = KEY.exec(text) ?? [];
  return secret !== undefined && checksum === checksumOf(secret);
}

export const hashApiKey = (key: string) => createHash('sha256').update(key).digest();

/** A key as its owner and admins see it: never the key itself, which only its creation shows. */
export const apiKeyRow = z
  .object({
    id: idColumn,
    name: z.string(),
    scopes: z.array(z.enum(apiKeyScopes)),
    prefix: z.string().meta({ description: 'The first characters of the key: what names it in lists and logs' }),
    created_at: timestampColumn,
    expires_at: timestampColumn.nullable().meta({ description: 'Null: it does not expire' }),
    last_used_at: timestampColumn
      .nullable()
      .meta({ description: 'To the minute; written at most once a minute per key, so it may lag by that' }),
  })
  .meta({ id: 'ApiKey' });
export type ApiKey = z.output<typeof apiKeyRow>;
