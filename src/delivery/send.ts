import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { literalAddress, nonPublicRange } from './addresses.ts';

/**
 * The one module that sends HTTP to user-supplied URLs, with the address guard inside it: nothing else in
 * the service calls `fetch` or `http.request` with a URL a user gave.
 */

export type DestinationSettings = {
  /** Allow loopback, private and other non-public addresses (development and tests only). */
  readonly allowPrivateNetworks: boolean;
  /** Allow `http:` URLs; otherwise only `https:`. */
  readonly allowHttp: boolean;
};

/** The rules as the configuration sets them: http is allowed outside production unless said otherwise. */
export const destinationSettings = (config: {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: boolean;
  WEBHOOK_ALLOW_HTTP?: boolean | undefined;
}): DestinationSettings => ({
  allowPrivateNetworks: config.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
  allowHttp: config.WEBHOOK_ALLOW_HTTP ?? false,
});

/** A destination refused by the rules: the message says why, for the user (400) or the deliveries log. */
export class DestinationRefused extends Error {
  override name = 'DestinationRefused';
}

/** The longest URL an endpoint may have, as stored: the parser's `href`, which may be longer than what was sent. */
const MAX_URL_LENGTH = 2000;

/**
 * The URL rules that need no network: no whitespace or control character in it (the parser would drop or
 * percent-encode them, and call another URL than the one shown), scheme, no credentials, a port, and a
 * literal address that is public. Returns the URL as the parser reads it: its `href` is what is called.
 */
export function checkUrl(text: string, settings: DestinationSettings): URL {
  if (/[\s\p{Cc}]/u.test(text)) throw new DestinationRefused('must not contain whitespace or control characters');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DestinationRefused('must be an absolute http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new DestinationRefused('must be an http(s) URL');
  if (url.protocol === 'http:' && !settings.allowHttp) {
    throw new DestinationRefused('must be an https URL (WEBHOOK_ALLOW_HTTP allows http)');
  }
  if (url.username !== '' || url.password !== '') throw new DestinationRefused('must not carry credentials');
  if (url.port === '0') throw new DestinationRefused('must not use port 0 (no destination listens there)');
  if (url.href.length > MAX_URL_LENGTH) {
    throw new DestinationRefused(`must be at most ${MAX_URL_LENGTH} characters once normalized (${url.href.length})`);
  }
  const literal = literalAddress(url);
  if (literal) assertAllowed(literal, settings);
  return url;
}

function assertAllowed(address: string, settings: DestinationSettings): void {
  if (settings.allowPrivateNetworks) return;
  const range = nonPublicRange(address);
  if (range) throw new DestinationRefused(`resolves to a non-public address (${address}: ${range})`);
}

/**
 * A DNS lookup that refuses a name when any of its addresses is not public: the connection is made only to
 * an address this function returned, so a name that resolves to a public address at registration and to
 * 127.0.0.1 later is refused at the later attempt. It runs at every connection (no socket is kept alive).
 */
function guardedLookup(settings: DestinationSettings): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      try {
        for (const { address } of addresses) assertAllowed(address, settings);
      } catch (refused) {
        return callback(refused as NodeJS.ErrnoException, '', 0);
      }
      const first = addresses[0];
      if (!first) return callback(new Error(`${hostname} has no address`), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * Checks a URL as a delivery would, before any is made: the rules, and the addresses its name resolves to
 * now (a name that does not resolve is refused too).
 * @throws DestinationRefused
 */
export async function checkDestination(text: string, settings: DestinationSettings): Promise<URL> {
  const url = checkUrl(text, settings);
  if (literalAddress(url) || settings.allowPrivateNetworks) return url;
  const lookup = guardedLookup(settings);
  await new Promise<void>((resolve, reject) =>
    lookup(url.hostname, {}, (error) =>
      error
        ? reject(error instanceof DestinationRefused ? error : new DestinationRefused('does not resolve'))
        : resolve(),
    ),
  );
  return url;
}

export type Attempt =
  | {
      readonly ok: boolean;
      readonly status: number;
      readonly response: string;
      readonly retryAfterSeconds: number | null;
    }
  | {
      readonly ok: false;
      readonly status: null;
      readonly error: string;
      /** The address rule refused the destination: no later attempt can do better. */
      readonly refused?: true;
      /** The caller's signal ended it (the worker is stopping): it is not an attempt to record. */
      readonly stopped?: true;
    };

/** How much of an answer's body is read and kept for the deliveries log. */
const MAX_RESPONSE_BYTES = 1024;

/**
 * POSTs a signed Standard Webhooks message: `webhook-id`, `webhook-timestamp` (now) and `webhook-signature`
 * (`v1,<base64>` by each secret, space-separated). Redirects are not followed (a 3xx is a failed attempt),
 * at most 1 KB of the answer is read, and the whole exchange (connect, send, answer, the first kilobyte of the
 * body) ends after `timeoutMs` (10 s: Timing.webhookAttemptTimeoutMs). Never throws: a refused address (with
 * `refused`), a network error or a timeout is an attempt with `error`.
 */
export function deliver(message: {
  url: string;
  id: string;
  body: string;
  secrets: readonly string[];
  userAgent: string;
  settings: DestinationSettings;
  timeoutMs: number;
  /** Ends the attempt early (a stopping worker). */
  signal?: AbortSignal;
}): Promise<Attempt> {
  const fail = (error: string): Attempt => ({ ok: false, status: null, error });
  const refuse = (error: Error): Attempt => ({ ok: false, status: null, error: error.message, refused: true });
  let url: URL;
  try {
    url = checkUrl(message.url, message.settings);
  } catch (error) {
    return Promise.resolve(refuse(error as Error));
  }
  const now = new Date();
  const signature = message.secrets.map((secret) => new Webhook(secret).sign(message.id, now, message.body)).join(' ');
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<Attempt>((resolve) => {
    const request = client.request(url, {
      method: 'POST',
      agent: false, // a new connection each time: every connection goes through the guarded lookup
      lookup: guardedLookup(message.settings),
      signal: message.signal
        ? AbortSignal.any([message.signal, AbortSignal.timeout(message.timeoutMs)])
        : AbortSignal.timeout(message.timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': message.userAgent,
        'webhook-id': message.id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': signature,
        'content-length': Buffer.byteLength(message.body),
      },
    });
    request.on('error', (error) => {
      if (error instanceof DestinationRefused) return resolve(refuse(error)); // by the guarded lookup
      if (message.signal?.aborted) return resolve({ ok: false, status: null, error: 'stopped', stopped: true });
      const reason =
        error.name === 'AbortError' || error.name === 'TimeoutError' ? 'timed out after 10 s' : error.message;
      resolve(fail(reason));
    });
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => {
        response.destroy();
        resolve({
          ok: status >= 200 && status < 300,
          status,
          response: Buffer.concat(chunks).subarray(0, MAX_RESPONSE_BYTES).toString('utf8'),
          retryAfterSeconds: retryAfterSeconds(response.headers['retry-after']),
        });
      };
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= MAX_RESPONSE_BYTES) done();
      });
      response.on('end', done);
      response.on('error', done);
    });
    request.end(message.body);
  });
}

/** `Retry-After` (RFC 9110): a number of seconds, or an HTTP date; null when absent or unreadable. */
export function retryAfterSeconds(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}
