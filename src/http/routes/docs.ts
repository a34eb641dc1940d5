import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import Router from '@koa/router';
import { notFound } from '../../errors.ts';
import { createOpenApiDocument } from '../openapi.ts';

/** Swagger UI's files, served from the installed package: the page needs nothing from the internet. */
const swaggerUiDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const ASSETS: Record<string, { file?: string; text?: string; type: string }> = {
  'swagger-ui.css': { file: 'swagger-ui.css', type: 'text/css; charset=utf-8' },
  'swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: 'text/javascript; charset=utf-8' },
  'favicon-32x32.png': { file: 'favicon-32x32.png', type: 'image/png' },
  // Not inline: the page's Content-Security-Policy allows scripts from this server only.
  'init.js': {
    text: `window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#docs',
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null, // no badge fetched from swagger.io
  });
});
`,
    type: 'text/javascript; charset=utf-8',
  },
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Task Manager API</title>
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="docs"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

/** Scripts, styles, images and requests from this server only; no inline script, no frames, no forms elsewhere. */
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** GET /openapi.json (OpenAPI 3.1, generated once) and GET /docs, the reference page, fully offline. */
export function docsRoutes(): Router {
  const router = new Router({ methods: http.METHODS });
  const document = createOpenApiDocument();
  const cache = new Map<string, Buffer | string>();

  router.get('/openapi.json', (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = document;
  });
  router.get('/docs', (ctx) => {
    ctx.set('Content-Security-Policy', DOCS_CSP);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = PAGE;
  });
  router.get('/docs/:file', async (ctx) => {
    const asset = ASSETS[ctx.params.file ?? ''];
    if (!asset) throw notFound('file');
    let body = cache.get(ctx.params.file ?? '');
    if (body === undefined) {
      body = asset.text ?? (await readFile(path.join(swaggerUiDir, asset.file ?? '')));
      cache.set(ctx.params.file ?? '', body);
    }
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.type = asset.type;
    ctx.body = body;
  });
  return router;
}
