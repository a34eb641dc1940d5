/**
 * The address rules of webhook destinations, as pure functions: no connection is attempted anywhere here.
 * (The refusal at a real connection is tested with loopback addresses in webhooks.test.ts.)
 */
import test from 'ava';
import { nonPublicRange } from '../src/delivery/addresses.ts';
import { checkUrl, DestinationRefused, retryAfterSeconds } from '../src/delivery/send.ts';

const refused: [string, string][] = [
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['100.64.0.1', 'carrierGradeNat'],
  ['100.127.255.254', 'carrierGradeNat'],
  ['127.0.0.1', 'loopback'],
  ['127.255.0.9', 'loopback'],
  ['169.254.0.1', 'linkLocal'],
  ['169.254.169.254', 'linkLocal'], // the cloud metadata address
  ['172.16.0.1', 'private'],
  ['172.31.255.254', 'private'],
  ['192.0.0.8', 'reserved'],
  ['192.0.2.1', 'reserved'],
  ['192.168.0.1', 'private'],
  ['198.18.0.1', 'reserved'],
  ['198.51.100.7', 'reserved'],
  ['203.0.113.9', 'reserved'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['fc00::1', 'uniqueLocal'],
  ['fd12:3456::1', 'uniqueLocal'],
  ['fe80::1', 'linkLocal'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'reserved'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:10.1.2.3', 'private'],
  ['::ffff:169.254.169.254', 'linkLocal'],
  ['64:ff9b::a00:1', 'rfc6052'],
  ['2002:a00:1::1', '6to4'],
  ['2001::1', 'teredo'],
];

test('every non-public range is refused, IPv4-mapped IPv6 included, and says which range', (t) => {
  for (const [address, range] of refused) t.is(nonPublicRange(address), range, address);
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

test('Retry-After: seconds or an HTTP date', (t) => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  t.is(retryAfterSeconds('120', now), 120);
  t.is(retryAfterSeconds('Wed, 02 Dec 2026 12:01:30 GMT', now), 90);
  t.is(retryAfterSeconds('Wed, 02 Dec 2026 11:00:00 GMT', now), 0);
  t.is(retryAfterSeconds(undefined, now), null);
  t.is(retryAfterSeconds('soon', now), null);
});
