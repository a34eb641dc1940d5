import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { projectDir } from '../src/config.ts';
import { CHROMIUM, chromiumInstalled, launchChromium } from './helpers/browser.ts';
import { startService } from './helpers/service.ts';

if (!chromiumInstalled) console.log(`docsPage: ${CHROMIUM} is not installed, so the /docs browser check is skipped`);

(chromiumInstalled ? test : test.skip)(
  'GET /docs works offline in Chromium: every route listed, no outside request, no console error',
  async (t) => {
    const service = await startService();
    t.teardown(() => service.stop());
    const document = (await (await fetch(`${service.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const operations = Object.entries<Record<string, unknown>>(document.paths).flatMap(([route, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${route}`),
    );

    const browser = await launchChromium();
    t.teardown(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 2400 } });
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));

    const response = await page.goto(`${service.baseUrl}/docs`, { waitUntil: 'networkidle' });
    t.is(response?.status(), 200);
    t.regex(response?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    await page.waitForSelector('.opblock', { timeout: 30_000 });
    const listed = await page.$$eval('.opblock', (blocks) =>
      blocks.map(
        (block) =>
          `${block.querySelector('.opblock-summary-method')?.textContent?.trim()} ${block
            .querySelector('.opblock-summary-path')
            ?.getAttribute('data-path')}`,
      ),
    );
    t.deepEqual([...listed].sort(), [...operations].sort());

    const outside = requested.filter((url) => !url.startsWith(service.baseUrl) && !url.startsWith('data:'));
    t.deepEqual(outside, [], 'no request left 127.0.0.1');
    t.deepEqual(problems, [], 'no console error (a CSP violation would be one)');

    const folder = path.join(projectDir, '.artifacts');
    await mkdir(folder, { recursive: true });
    await page.screenshot({ path: path.join(folder, 'docs.png') });
    t.log(`${listed.length} operations listed; screenshot in .artifacts/docs.png`);
  },
);
