import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import helmet from 'helmet';
import Koa from 'koa';
import { AppError } from '../errors.ts';
import { createAuth } from './auth.ts';
import type { AppDeps } from './deps.ts';
import { errorMiddleware } from './errorMiddleware.ts';
import { createAuthLimiter } from './rateLimit.ts';
import { accountRoutes } from './routes/accounts.ts';
import { apiKeyRoutes } from './routes/apiKeys.ts';
import { appRoutes } from './routes/app.ts';
import { docsRoutes } from './routes/docs.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { queueRoutes } from './routes/overview.ts';
import { scheduleRoutes } from './routes/schedules.ts';
import { taskRoutes } from './routes/tasks.ts';
import { userRoutes } from './routes/users.ts';
import { webhookRoutes } from './routes/webhooks.ts';

const BODY_LIMIT = '64kb';
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The HTTP API as a Koa app, apart from `listen`, so tests need no fixed port. */
/** Methods whose requests may carry a JSON body (DELETE /me carries the password). */
const BODY_METHODS = ['POST', 'PATCH', 'DELETE'];

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  // Behind N proxies the client's address is the Nth entry from the right of X-Forwarded-For: the ones
  // further left were written by the client itself, and trusting them would let it pick its own address.
  app.proxy = deps.trustProxyHops > 0;
  app.maxIpsCount = deps.trustProxyHops;
  app.silent = true; // errors are logged by errorMiddleware, with the request id

  // One child of the histogram per (method, route, status), made once: prom-client hashes the labels of
  // every observation otherwise.
  const series = new Map<string, { observe(seconds: number): void }>();
  const observeRequest = (method: string, route: string, status: number, seconds: number) => {
    const key = `${method} ${route} ${status}`;
    let child = series.get(key);
    if (!child) {
      child = deps.metrics.httpRequestDuration.labels({ method, route, status });
      series.set(key, child);
    }
    child.observe(seconds);
  };
  // Standard security headers (nosniff, HSTS, a deny-all CSP ...) on every response, errors included.
  const securityHeaders = helmetHeaders();
  app.use(async (ctx, next) => {
    const incoming = ctx.get('X-Request-Id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId; // errorMiddleware logs a failure with it
    // Straight onto the response: they are the same on every one, and Koa's ctx.set allocates per call.
    const { res } = ctx;
    res.setHeader('X-Request-Id', requestId);
    for (const [name, value] of securityHeaders) res.setHeader(name, value);
    // While shutting down, every response closes its connection, so keep-alive clients go elsewhere.
    if (deps.draining()) res.setHeader('Connection', 'close');
    const started = performance.now();
    try {
      await next();
    } finally {
      const ms = performance.now() - started;
      const line = { requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms) };
      deps.log.info(line, 'request');
      // By route pattern (`/tasks/:id`), never by path: ids and junk paths must not become series.
      const route = typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : 'unmatched';
      observeRequest(ctx.method, route, ctx.status, ms / 1000);
    }
  });
  app.use(errorMiddleware(deps.log));
  app.use(deadline(deps.requestTimeoutMs));
  app.use(async (ctx, next) => {
    // A body on POST, PATCH or DELETE must be JSON in UTF-8; an empty body is left to validation.
    const hasBody = Number(ctx.get('Content-Length') || 0) > 0 || ctx.get('Transfer-Encoding') !== '';
    if (BODY_METHODS.includes(ctx.method) && hasBody) {
      if (!ctx.is('application/json')) {
        throw new AppError(415, 'unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
      }
      const charset = ctx.request.charset.toLowerCase();
      if (charset !== '' && charset !== 'utf-8' && charset !== 'utf8') {
        throw new AppError(400, 'invalid_json', `the body must be JSON in UTF-8, not ${charset.slice(0, 40)}`);
      }
    }
    await next();
  });
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: BODY_LIMIT, jsonStrict: true, parsedMethods: BODY_METHODS }));

  // One router holding every route: a request is matched once, not once per router.
  const root = new Router({ methods: http.METHODS });
  for (const router of createRouters(deps)) root.use(router.routes());
  app.use(root.routes());
  app.use(root.allowedMethods({ throw: false }));
  return app;
}

/**
 * helmet's headers with its defaults (but `X-Frame-Options: DENY`, which says what the CSP's
 * `frame-ancestors 'none'` says, where helmet's default SAMEORIGIN contradicts it), worked out once: they are the same on every response, and helmet
 * run per request (as koa-helmet does, through a promise) rebuilt and set them one by one each time.
 */
function helmetHeaders(): [string, string][] {
  const headers: [string, string][] = [];
  const response = {
    setHeader: (name: string, value: unknown) => {
      headers.push([name, String(value)]);
    },
    removeHeader: () => {},
  };
  helmet({ xFrameOptions: { action: 'deny' } })({} as never, response as never, () => {});
  return headers;
}

/** Every router of the API: `createApp` serves them, and a test holds the OpenAPI document to them. */
export function createRouters(deps: AppDeps): Router[] {
  const limiter = createAuthLimiter(deps.db, deps.rateLimit);
  const auth = createAuth({ ...deps, limiter });
  return [
    healthRoutes(deps),
    metricsRoutes(deps),
    docsRoutes(),
    accountRoutes({ ...deps, limiter, auth }),
    apiKeyRoutes({ ...deps, limiter, auth }),
    userRoutes({ ...deps, limiter, auth }),
    taskRoutes({ ...deps, auth }),
    scheduleRoutes({ ...deps, auth }),
    webhookRoutes({ ...deps, auth }),
    queueRoutes({ ...deps, auth }),
    appRoutes(),
  ];
}

/**
 * A request that is not answered within `ms` gets a 503: during a network partition the database neither
 * answers nor refuses, and the client must not wait as long as the partition lasts. The work itself is not
 * stopped (a query in flight fails on its own timeout); a POST that times out this way may still commit,
 * which is what `Idempotency-Key` is for. Routes that wait on purpose (`Prefer: wait`, the event stream)
 * set `ctx.state.unbounded` once their database reads are done.
 */
function deadline(ms: number): Koa.Middleware {
  return async (ctx, next) => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A long-poll or an event stream that is under way says so: it is meant to last.
        if (ctx.state.unbounded) return;
        reject(new AppError(503, 'unavailable', 'the database did not answer in time, try again shortly'));
      }, ms);
    });
    try {
      await Promise.race([next(), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * What a worker-only process serves on METRICS_PORT: /metrics for Prometheus and /healthz for the
 * platform's health check.
 */
export function createMetricsApp(deps: Pick<AppDeps, 'log' | 'metrics' | 'metricsToken'>): Koa {
  const app = new Koa();
  app.silent = true;
  app.use(errorMiddleware(deps.log));
  const health = new Router({ methods: http.METHODS });
  health.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  for (const router of [health, metricsRoutes(deps)]) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: false }));
  }
  return app;
}
