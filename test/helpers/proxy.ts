import { readFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of Postgres that can play a network failure:
 * - `blackhole()`: a partition. Nothing is refused, nothing gets through: bytes wait, as dropped packets
 *   would be retransmitted. New connections are accepted and hang.
 * - `heal()`: everything that waited flows again.
 * - `cut()`: an outage. Every connection is reset and new ones are refused.
 * `port` may be given to listen on a port chosen earlier (a database that comes up late). `sent` counts the
 * bytes clients sent on to Postgres.
 */
export async function tcpProxy(target: URL, port = 0) {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  const waiting = new Set<net.Socket>();
  let blocked = false;
  let sent = 0; // bytes clients sent on to Postgres: a request that sent none made no query

  const link = (client: net.Socket) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    const pair = { client, upstream };
    pairs.add(pair);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      pairs.delete(pair);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
    });
    if (!blocked) client.pipe(upstream).pipe(client);
  };
  const server = net.createServer((client) => {
    client.on('error', () => {});
    if (blocked) {
      client.pause();
      waiting.add(client);
      client.on('close', () => waiting.delete(client));
    } else {
      link(client);
    }
  });
  server.listen(port, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);

  return {
    url: url.toString(),
    /** How many bytes clients have sent on to Postgres so far. */
    get sent() {
      return sent;
    },
    blackhole() {
      blocked = true;
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    heal() {
      blocked = false;
      for (const { client, upstream } of pairs) client.pipe(upstream).pipe(client);
      for (const client of waiting) link(client);
      waiting.clear();
    },
    cut() {
      server.close();
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      for (const client of waiting) client.destroy();
    },
  };
}

/** Whether a listener could be opened on this loopback port just now (closed again at once). */
const canListen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/** The lowest port the kernel hands out for `listen(0)` and outgoing connections (32768 unless set). */
const ephemeralLow = async () => {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768');
  return Number.parseInt(range, 10) || 32768;
};

/**
 * A loopback port that was free a moment ago, for a process the test starts to listen on. It is taken
 * below the kernel's ephemeral range, at random: a port from that range (what `listen(0)` gives) can be
 * handed to someone else before the process binds it (seen beside another suite: a service on PORT=0
 * got the very port the test had picked for its embedded Postgres).
 */
export async function freePort(): Promise<number> {
  const top = Math.max(Math.min(await ephemeralLow(), 32768), 21_000);
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * (top - 20_000));
    if (await canListen(port)) return port;
  }
}
