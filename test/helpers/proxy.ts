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

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
