import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import type { Context } from 'koa';
import { notFound } from '../../errors.ts';

/**
 * GET / serves the web app: plain ES modules from src/web, and Preact, its hooks and htm from the installed
 * packages (no build step, no CDN). Modules import each other by absolute path; Preact's hooks import
 * "preact" by name, which a browser resolves only through an import map (an inline script, which the CSP
 * forbids), so that one import is rewritten to the served path once, when the file is first read.
 */
const webDir = fileURLToPath(new URL('../../web/', import.meta.url));
const resolve = createRequire(import.meta.url).resolve;
const preactDir = path.dirname(resolve('preact/package.json'));
const htmDist = path.dirname(resolve('htm')); // htm exports no package.json

const JS = 'text/javascript; charset=utf-8';
const FILES: Record<string, { file: string; type: string; rewrite?: (text: string) => string }> = {
  'app.js': { file: path.join(webDir, 'app.js'), type: JS },
  'api.js': { file: path.join(webDir, 'api.js'), type: JS },
  'events.js': { file: path.join(webDir, 'events.js'), type: JS },
  'ui.js': { file: path.join(webDir, 'ui.js'), type: JS },
  'tasks.js': { file: path.join(webDir, 'tasks.js'), type: JS },
  'webhooks.js': { file: path.join(webDir, 'webhooks.js'), type: JS },
  'admin.js': { file: path.join(webDir, 'admin.js'), type: JS },
  'apiKeys.js': { file: path.join(webDir, 'apiKeys.js'), type: JS },
  'schedules.js': { file: path.join(webDir, 'schedules.js'), type: JS },
  'style.css': { file: path.join(webDir, 'style.css'), type: 'text/css; charset=utf-8' },
  'vendor/preact.js': { file: path.join(preactDir, 'dist/preact.module.js'), type: JS },
  'vendor/hooks.js': {
    file: path.join(preactDir, 'hooks/dist/hooks.module.js'),
    type: JS,
    rewrite: (text) => text.replaceAll(/from\s*["']preact["']/g, 'from"/app/vendor/preact.js"'),
  },
  'vendor/htm.js': { file: path.join(htmDist, 'htm.module.js'), type: JS },
};

/** Everything from this server only; no inline script or style, no eval, no frames. */
const APP_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export function appRoutes(): Router {
  const router = new Router({ methods: http.METHODS });
  const cache = new Map<string, string>();
  const read = async (name: string, file: string, rewrite = (text: string) => text) => {
    let text = cache.get(name);
    if (text === undefined) {
      text = rewrite(await readFile(file, 'utf8'));
      cache.set(name, text);
    }
    return text;
  };

  router.get('/', async (ctx) => {
    ctx.set('Content-Security-Policy', APP_CSP);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = await read('index.html', path.join(webDir, 'index.html'));
  });
  const serve = (name: string) => async (ctx: Context) => {
    const asset = FILES[name];
    if (!asset) throw notFound('file');
    ctx.set('Content-Security-Policy', APP_CSP);
    ctx.set('Cache-Control', 'no-cache'); // small files, always current
    ctx.type = asset.type;
    ctx.body = await read(name, asset.file, asset.rewrite);
  };
  router.get('/app/:file', (ctx) => serve(ctx.params.file ?? '')(ctx));
  router.get('/app/vendor/:file', (ctx) => serve(`vendor/${ctx.params.file ?? ''}`)(ctx));
  return router;
}
