import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type Koa from 'koa';
import type { Logger } from '../log.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export type HttpServer = {
  readonly server: http.Server;
  /** True once `drain` was called: the app answers /readyz with 503 and closes connections after each response. */
  draining(): boolean;
  /** Serves this app from now on (until then, the stand-in that answers while the service starts). */
  serve(app: Koa): void;
  listen(port: number, host?: string): Promise<number>;
  /**
   * Graceful stop: mark draining, keep serving for `graceMs` (a request on a connection opened just before
   * the signal is answered, with `Connection: close`), then stop accepting, close idle connections and
   * wait for the requests in flight.
   */
  drain(graceMs: number): Promise<void>;
};

/**
 * The HTTP server around the app. Node answers some bad requests itself, before any app sees them
 * (431 for huge headers, 400 for a malformed request line or header): here they get the JSON error shape
 * too. Until `serve` is called it answers /healthz (200) and everything else with 503, so that a service
 * waiting for its database is seen as up but not ready.
 */
export function createHttpServer(log: Logger): HttpServer {
  let handler: Handler = starting;
  let draining = false;
  const server = http.createServer((req, res) => handler(req, res));
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, code, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'the request headers are too large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'request_timeout', 'the request took too long to arrive']
          : [400, 'bad_request', 'the request is not valid HTTP'];
    log.info({ status, reason: error.code }, 'refused a malformed request');
    socket.end(rawJsonResponse(status, { error: { code, message } }));
  });

  return {
    server,
    draining: () => draining,
    serve(app) {
      handler = app.callback();
    },
    async listen(port, host) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return (server.address() as AddressInfo).port;
    },
    async drain(graceMs) {
      draining = true;
      await sleep(graceMs);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
    },
  };
}

/** While the service starts: alive, not ready. */
function starting(req: IncomingMessage, res: ServerResponse): void {
  const [status, body] =
    req.url === '/healthz'
      ? [200, { status: 'starting' }]
      : [503, { error: { code: 'unavailable', message: 'the service is starting: try again shortly' } }];
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...(status === 503 && { 'Retry-After': '5' }),
  });
  res.end(text);
}

function rawJsonResponse(status: number, body: unknown): string {
  const text = JSON.stringify(body);
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(text)}\r\n` +
    'Connection: close\r\n\r\n' +
    text
  );
}
