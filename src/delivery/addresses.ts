import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Why an address may not be a webhook's destination, or null when it is a public unicast address. ipaddr.js
 * (a small, widely used parser) names each address's IANA range; only `unicast` is public. IPv4-mapped IPv6
 * addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry. IPv6 ranges that translate to
 * IPv4 (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo) are refused too: they could reach a private IPv4
 * address through a gateway.
 */
export function nonPublicRange(address: string): string | null {
  if (!isIP(address)) return 'not an IP address';
  const parsed = ipaddr.process(address); // IPv4-mapped IPv6 becomes IPv4
  const range = parsed.range();
  return range === 'unicast' ? null : range;
}

/**
 * A URL's host as an IP address, when it is one (the WHATWG URL parser has already turned `127.1`,
 * `0x7f000001` and `2130706433` into `127.0.0.1`, and strips the brackets of IPv6 here); null for a name.
 */
export function literalAddress(url: URL): string | null {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) ? host : null;
}
