import { randomBytes } from 'node:crypto';
import { type CommonQueryMethods, type DatabasePool, sql } from 'slonik';
import { z } from 'zod';
import { conflict, notFound } from '../../errors.ts';
import type { Actor } from '../users/user.ts';
import {
  type Endpoint,
  endpointRow,
  MAX_ENDPOINTS_PER_USER,
  ROTATION_OVERLAP_HOURS,
  type WebhookEventType,
} from './webhook.ts';

const columns = sql.fragment`id, url, events, description, enabled, disabled_reason, created_at`;
const countRow = z.object({ count: z.number() });
const secretRow = z.object({ secret: z.string() });

/** A new signing secret, as Standard Webhooks gives them out: `whsec_` and the base64 of 32 random bytes. */
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** Endpoints are their owner's alone (an admin's too): someone else's is a 404, as a task is. */
const mine = (actor: Actor, id: number) => sql.fragment`id = ${id} and user_id = ${actor.id}`;

/**
 * Registers an endpoint and gives out its secret (the only time, with rotation). The user's row is locked
 * while the endpoints are counted, so two concurrent registrations cannot pass the limit together.
 * @throws AppError 409 beyond `MAX_ENDPOINTS_PER_USER`.
 */
export function createEndpoint(
  db: DatabasePool,
  actor: Actor,
  input: { url: string; events: WebhookEventType[]; description: string },
): Promise<Endpoint & { secret: string }> {
  return db.transaction(async (tx) => {
    await tx.query(sql.type(z.object({}))`select 1 from users where id = ${actor.id} for update`);
    const count = await tx.oneFirst(sql.type(countRow)`
      select count(*)::int as count from webhook_endpoints where user_id = ${actor.id}`);
    if (count >= MAX_ENDPOINTS_PER_USER) {
      throw conflict(`at most ${MAX_ENDPOINTS_PER_USER} webhook endpoints per user: delete one first`);
    }
    const secret = newSecret();
    const endpoint = await tx.one(sql.type(endpointRow)`
      insert into webhook_endpoints (user_id, url, events, description, secret)
      values (${actor.id}, ${input.url}, ${sql.array(input.events, 'text')}, ${input.description}, ${secret})
      returning ${columns}`);
    return { ...endpoint, secret };
  });
}

export function listEndpoints(db: CommonQueryMethods, actor: Actor) {
  return db.any(sql.type(endpointRow)`
    select ${columns} from webhook_endpoints where user_id = ${actor.id} order by id desc`);
}

/** @throws AppError 404 when it does not exist or is someone else's. */
export async function getEndpoint(db: CommonQueryMethods, actor: Actor, id: number): Promise<Endpoint> {
  const endpoint = await db.maybeOne(
    sql.type(endpointRow)`select ${columns} from webhook_endpoints where ${mine(actor, id)}`,
  );
  if (!endpoint) throw notFound('webhook endpoint');
  return endpoint;
}

/** @throws AppError 404 when it does not exist or is someone else's. */
export async function updateEndpoint(
  db: CommonQueryMethods,
  actor: Actor,
  id: number,
  change: {
    url?: string | undefined;
    events?: WebhookEventType[] | undefined;
    description?: string | undefined;
    enabled?: boolean | undefined;
  },
): Promise<Endpoint> {
  const endpoint = await db.maybeOne(sql.type(endpointRow)`
    update webhook_endpoints
    set url = coalesce(${change.url ?? null}, url),
        events = coalesce(${change.events ? sql.array(change.events, 'text') : null}::text[], events),
        description = coalesce(${change.description ?? null}, description),
        enabled = coalesce(${change.enabled ?? null}::boolean, enabled),
        -- Turned on: a fresh start (the 5-day count begins again). Turned off by its owner: says so.
        disabled_reason = case ${change.enabled ?? null}::boolean
                            when true then null when false then 'disabled by its owner' else disabled_reason end,
        failing_since = case when ${change.enabled ?? null}::boolean then null else failing_since end,
        updated_at = now()
    where ${mine(actor, id)}
    returning ${columns}`);
  if (!endpoint) throw notFound('webhook endpoint');
  return endpoint;
}

/**
 * Deletes the endpoint and its deliveries log: deliveries not yet made are not made (their jobs find
 * nothing to send).
 * @throws AppError 404 when it does not exist or is someone else's.
 */
export async function deleteEndpoint(db: CommonQueryMethods, actor: Actor, id: number): Promise<void> {
  const { rowCount } = await db.query(sql.type(z.object({}))`delete from webhook_endpoints where ${mine(actor, id)}`);
  if (rowCount === 0) throw notFound('webhook endpoint');
}

/**
 * A new secret; the one it replaces keeps signing beside it for `ROTATION_OVERLAP_HOURS`, so receivers can
 * switch without losing a delivery. (A rotation during an overlap ends the older one's.)
 * @throws AppError 404 when it does not exist or is someone else's.
 */
export async function rotateSecret(db: CommonQueryMethods, actor: Actor, id: number): Promise<{ secret: string }> {
  const secret = newSecret();
  const rotated = await db.maybeOne(sql.type(secretRow)`
    update webhook_endpoints
    set previous_secret = secret,
        previous_secret_until = now() + make_interval(hours => ${ROTATION_OVERLAP_HOURS}),
        secret = ${secret},
        updated_at = now()
    where ${mine(actor, id)}
    returning secret`);
  if (!rotated) throw notFound('webhook endpoint');
  return rotated;
}
