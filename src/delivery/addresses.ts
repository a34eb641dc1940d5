import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Which addresses a webhook may be sent to: only globally reachable ones, as IANA's special-purpose
 * address registries say (IPv4 and IPv6, as of 2025), and for IPv6 only inside the global unicast space
 * 2000::/3. ipaddr.js parses; its range names are not used, since it calls every address it has no name for
 * `unicast` (`::7f00:1`, IPv4-compatible and deprecated, was one). The most specific entry decides, so the
 * globally reachable anycast entries inside a non-reachable block (192.0.0.9 in 192.0.0.0/24) pass.
 */

type Entry = { readonly cidr: string; readonly name: string; readonly reachable: boolean };
type Parsed = Entry & { readonly range: [ipaddr.IPv4 | ipaddr.IPv6, number] };

const entry = (cidr: string, name: string, reachable = false): Entry => ({ cidr, name, reachable });

/** IANA IPv4 Special-Purpose Address Registry, and multicast (a registry of its own). */
export const IPV4_SPECIAL: readonly Entry[] = [
  entry('0.0.0.0/8', '"this network" (RFC 791)'),
  entry('0.0.0.0/32', '"this host on this network" (RFC 1122)'),
  entry('10.0.0.0/8', 'private use (RFC 1918)'),
  entry('100.64.0.0/10', 'shared address space (RFC 6598)'),
  entry('127.0.0.0/8', 'loopback (RFC 1122)'),
  entry('169.254.0.0/16', 'link local (RFC 3927)'),
  entry('172.16.0.0/12', 'private use (RFC 1918)'),
  entry('192.0.0.0/24', 'IETF protocol assignments (RFC 6890)'),
  entry('192.0.0.0/29', 'IPv4 service continuity prefix (RFC 7335)'),
  entry('192.0.0.8/32', 'IPv4 dummy address (RFC 7600)'),
  entry('192.0.0.9/32', 'port control protocol anycast (RFC 7723)', true),
  entry('192.0.0.10/32', 'traversal using relays around NAT anycast (RFC 8155)', true),
  entry('192.0.0.170/32', 'NAT64/DNS64 discovery (RFC 7050)'),
  entry('192.0.0.171/32', 'NAT64/DNS64 discovery (RFC 7050)'),
  entry('192.0.2.0/24', 'documentation, TEST-NET-1 (RFC 5737)'),
  entry('192.31.196.0/24', 'AS112-v4 (RFC 7535)', true),
  entry('192.52.193.0/24', 'automatic multicast tunneling (RFC 7450)', true),
  entry('192.88.99.0/24', 'deprecated 6to4 relay anycast (RFC 7526)'),
  entry('192.168.0.0/16', 'private use (RFC 1918)'),
  entry('192.175.48.0/24', 'direct delegation AS112 service (RFC 7534)', true),
  entry('198.18.0.0/15', 'benchmarking (RFC 2544)'),
  entry('198.51.100.0/24', 'documentation, TEST-NET-2 (RFC 5737)'),
  entry('203.0.113.0/24', 'documentation, TEST-NET-3 (RFC 5737)'),
  entry('224.0.0.0/4', 'multicast (RFC 5771)'),
  entry('240.0.0.0/4', 'reserved (RFC 1112)'),
  entry('255.255.255.255/32', 'limited broadcast (RFC 919)'),
];

/**
 * IANA IPv6 Special-Purpose Address Registry, multicast, and IPv4-compatible addresses. Three entries are
 * refused though the registry does not say "not reachable": the translation prefixes NAT64, 6to4 and
 * Teredo can carry a packet on to a private IPv4 address through a gateway.
 */
export const IPV6_SPECIAL: readonly Entry[] = [
  entry('::/128', 'unspecified (RFC 4291)'),
  entry('::1/128', 'loopback (RFC 4291)'),
  entry('::/96', 'IPv4-compatible, deprecated (RFC 4291)'),
  entry('64:ff9b::/96', 'IPv4/IPv6 translation (RFC 6052): may reach a private IPv4 address'),
  entry('64:ff9b:1::/48', 'local-use IPv4/IPv6 translation (RFC 8215)'),
  entry('100::/64', 'discard-only (RFC 6666)'),
  entry('100:0:0:1::/64', 'dummy IPv6 prefix (RFC 9780)'),
  entry('2001::/23', 'IETF protocol assignments (RFC 2928)'),
  entry('2001::/32', 'Teredo (RFC 4380): may reach a private IPv4 address'),
  entry('2001:1::1/128', 'port control protocol anycast (RFC 7723)', true),
  entry('2001:1::2/128', 'traversal using relays around NAT anycast (RFC 8155)', true),
  entry('2001:1::3/128', 'DNS-SD service registration protocol anycast (RFC 9665)', true),
  entry('2001:2::/48', 'benchmarking (RFC 5180)'),
  entry('2001:3::/32', 'automatic multicast tunneling (RFC 7450)', true),
  entry('2001:4:112::/48', 'AS112-v6 (RFC 7535)', true),
  entry('2001:10::/28', 'deprecated ORCHID (RFC 4843)'),
  entry('2001:20::/28', 'ORCHIDv2 (RFC 7343)', true),
  entry('2001:30::/28', 'drone remote ID protocol entity tags (RFC 9374)', true),
  entry('2001:db8::/32', 'documentation (RFC 3849)'),
  entry('2002::/16', '6to4 (RFC 3056): may reach a private IPv4 address'),
  entry('2620:4f:8000::/48', 'direct delegation AS112 service (RFC 7534)', true),
  entry('3fff::/20', 'documentation (RFC 9637)'),
  entry('5f00::/16', 'segment routing SIDs (RFC 9602)'),
  entry('fc00::/7', 'unique local (RFC 4193)'),
  entry('fe80::/10', 'link-local unicast (RFC 4291)'),
  entry('ff00::/8', 'multicast (RFC 4291)'),
];

const parse = (entries: readonly Entry[]): Parsed[] =>
  entries.map((one) => ({ ...one, range: ipaddr.parseCIDR(one.cidr) })).sort((a, b) => b.range[1] - a.range[1]); // the most specific first
const V4 = parse(IPV4_SPECIAL);
const V6 = parse(IPV6_SPECIAL);
const GLOBAL_UNICAST = ipaddr.parseCIDR('2000::/3');

/**
 * Why an address may not be a webhook's destination (its registry entry), or null when it is globally
 * reachable. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry.
 */
export function nonPublicRange(address: string): string | null {
  if (!isIP(address)) return 'not an IP address';
  const parsed = ipaddr.process(address); // IPv4-mapped IPv6 becomes IPv4
  const table = parsed.kind() === 'ipv4' ? V4 : V6;
  const found = table.find(({ range }) => range[0].kind() === parsed.kind() && parsed.match(range));
  if (found) return found.reachable ? null : `${found.name}, ${found.cidr}`;
  if (parsed.kind() === 'ipv6' && !parsed.match(GLOBAL_UNICAST)) {
    return 'outside the global unicast space 2000::/3 (IANA IPv6 address space)';
  }
  return null;
}

/**
 * A URL's host as an IP address, when it is one (the WHATWG URL parser has already turned `127.1`,
 * `0x7f000001` and `2130706433` into `127.0.0.1`, and strips the brackets of IPv6 here); null for a name.
 */
export function literalAddress(url: URL): string | null {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) ? host : null;
}
