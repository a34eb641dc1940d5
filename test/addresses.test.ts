/**
 * The address rules of webhook destinations, as pure functions: no connection is attempted anywhere here.
 * (The refusal at a real connection is tested with loopback addresses in webhooks.test.ts.)
 */
import test from 'ava';
import ipaddr from 'ipaddr.js';
import { IPV4_SPECIAL, IPV6_SPECIAL, nonPublicRange } from '../src/delivery/addresses.ts';
import { checkUrl, DestinationRefused, retryAfterSeconds } from '../src/delivery/send.ts';

/** Addresses ipaddr.js calls plain `unicast`, which are not globally reachable (found by hand: they were 201). */
const notUnicast = [
  '::127.0.0.1',
  '::7f00:1',
  '::2',
  '::a00:1',
  '::ffff:ffff',
  '1::1',
  '4000::1',
  '5f00::1',
  '3fff::1',
];

const refused = [
  '0.0.0.0',
  '0.1.2.3',
  '10.0.0.1',
  '100.64.0.1',
  '127.0.0.1',
  '127.255.0.9',
  '169.254.169.254', // the cloud metadata address
  '172.31.255.254',
  '192.0.0.8',
  '192.0.2.1',
  '192.168.0.1',
  '198.18.0.1',
  '224.0.0.1',
  '240.0.0.1',
  '255.255.255.255',
  '::',
  '::1',
  'fd12:3456::1',
  'fe80::1',
  'ff02::1',
  '2001:db8::1',
  '::ffff:127.0.0.1',
  '::ffff:7f00:1',
  '::ffff:10.1.2.3',
  '64:ff9b::a00:1',
  '2002:a00:1::1',
  '2001::1',
  ...notUnicast,
];

test('every non-public address is refused, IPv4-mapped and IPv4-compatible IPv6 included', (t) => {
  for (const address of refused) t.truthy(nonPublicRange(address), address);
  t.regex(nonPublicRange('::7f00:1') ?? '', /IPv4-compatible, deprecated/);
  t.regex(nonPublicRange('169.254.169.254') ?? '', /link local \(RFC 3927\), 169\.254\.0\.0\/16/);
  t.regex(nonPublicRange('4000::1') ?? '', /outside the global unicast space/);
});

test('each entry of the IANA special-purpose registries: its first and last address follow its "globally reachable"', (t) => {
  const cases = [
    ...IPV4_SPECIAL.map((e) => ({
      ...e,
      first: ipaddr.IPv4.networkAddressFromCIDR(e.cidr),
      last: ipaddr.IPv4.broadcastAddressFromCIDR(e.cidr),
    })),
    ...IPV6_SPECIAL.map((e) => ({
      ...e,
      first: ipaddr.IPv6.networkAddressFromCIDR(e.cidr),
      last: ipaddr.IPv6.broadcastAddressFromCIDR(e.cidr),
    })),
  ];
  t.true(cases.length >= 50);
  for (const { cidr, reachable, first, last } of cases) {
    for (const address of [first.toString(), last.toString()]) {
      if (reachable) t.is(nonPublicRange(address), null, `${address} of ${cidr}`);
      else t.truthy(nonPublicRange(address), `${address} of ${cidr}`);
    }
  }
  // The most specific entry decides: anycast services inside non-reachable blocks pass, their neighbours do not.
  t.is(nonPublicRange('192.0.0.9'), null);
  t.truthy(nonPublicRange('192.0.0.11'));
  t.is(nonPublicRange('2001:3::1'), null);
  t.truthy(nonPublicRange('2001:5::1'));
});

test('public unicast addresses pass', (t) => {
  for (const address of [
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '2606:4700:4700::1111',
    '2a00:1450::1',
    '::ffff:8.8.8.8',
  ]) {
    t.is(nonPublicRange(address), null, address);
  }
  t.is(nonPublicRange('example.com'), 'not an IP address');
});

test('URL rules: odd spellings of an address are the address; schemes, credentials and http in production', (t) => {
  const strict = { allowPrivateNetworks: false, allowHttp: true };
  for (const url of [
    'http://127.1/',
    'http://0x7f000001/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::1]/',
    'http://10.0.0.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fd00::1]/',
    'http://0/',
  ]) {
    t.throws(() => checkUrl(url, strict), { instanceOf: DestinationRefused, message: /non-public address/ }, url);
  }
  t.throws(() => checkUrl('ftp://example.com/', strict), { message: 'must be an http(s) URL' });
  t.throws(() => checkUrl('http://user:secret@example.com/', strict), { message: 'must not carry credentials' });
  t.throws(() => checkUrl('nonsense', strict), { message: 'must be an absolute http(s) URL' });
  const httpsOnly = { allowPrivateNetworks: false, allowHttp: false };
  t.throws(() => checkUrl('http://example.com/', httpsOnly), { message: /https/ });
  t.is(checkUrl('https://example.com/hook', httpsOnly).hostname, 'example.com'); // a name: checked when it resolves
  t.is(checkUrl('https://93.184.216.34/hook', httpsOnly).hostname, '93.184.216.34');
  t.is(checkUrl('http://127.0.0.1:8080/', { allowPrivateNetworks: true, allowHttp: true }).port, '8080');
});

test('URL rules: no whitespace or control character inside, no port 0, and the href is what is called', (t) => {
  const open = { allowPrivateNetworks: true, allowHttp: true };
  for (const url of [
    'http://host/inj\r\nX-Injected: 1',
    'http://host/a b',
    'http://host/\ttab',
    'http://host/\u0000',
    'http://host/\u007f',
    'http://host/\u00a0nbsp',
    ' http://host/',
  ]) {
    t.throws(
      () => checkUrl(url, open),
      { message: 'must not contain whitespace or control characters' },
      JSON.stringify(url),
    );
  }
  t.throws(() => checkUrl('http://8.8.8.8:0/', open), { message: /port 0/ });
  t.is(checkUrl('HTTP://Example.COM:80/a/../b?q=1#f', open).href, 'http://example.com/b?q=1#f');
  t.is(checkUrl('http://example.com/ü', open).href, 'http://example.com/%C3%BC');
  t.throws(() => checkUrl(`http://example.com/${'ü'.repeat(400)}`, open), {
    message: /at most 2000 characters once normalized/,
  });
});

test('Retry-After: seconds or an HTTP date', (t) => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  t.is(retryAfterSeconds('120', now), 120);
  t.is(retryAfterSeconds('Wed, 02 Dec 2026 12:01:30 GMT', now), 90);
  t.is(retryAfterSeconds('Wed, 02 Dec 2026 11:00:00 GMT', now), 0);
  t.is(retryAfterSeconds(undefined, now), null);
  t.is(retryAfterSeconds('soon', now), null);
});
