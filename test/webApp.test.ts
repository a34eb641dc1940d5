/**
 * The web app in Debian's Chromium (playwright-core), driven only through accessible roles and labels, as
 * a person with a screen reader or a keyboard would: register, sign in, create a task due in 3 s and watch
 * it turn completed without a reload, reschedule one, delete one; another user sees none of it; sign out.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import AxeBuilder from '@axe-core/playwright';
import test from 'ava';
import type { Browser, Page } from 'playwright-core';
import { projectDir } from '../src/config.ts';
import { CHROMIUM, chromiumInstalled, launchChromium } from './helpers/browser.ts';
import { startService, type TestService } from './helpers/service.ts';

if (!chromiumInstalled) console.log(`webApp: ${CHROMIUM} is not installed, so the web app's browser test is skipped`);

const artifacts = path.join(projectDir, '.artifacts');

/** Serious or critical accessibility violations on the page as it is now (axe-core). */
async function axeViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map(
      (violation) =>
        `${violation.id}: ${violation.help} (${violation.nodes.map((node) => node.target.join(' ')).join(', ')})`,
    );
}

/** A page in a fresh context, with its console errors and every request it made recorded. */
async function openPage(browser: Browser, service: TestService, width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: service.baseUrl });
  const page = await context.newPage();
  const problems: string[] = [];
  const requested: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('request', (request) => requested.push(request.url()));
  return { context, page, problems, requested };
}

async function screenshots(page: Page, name: string) {
  await mkdir(artifacts, { recursive: true });
  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: path.join(artifacts, `app-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function register(page: Page, email: string, admin = false) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('password123');
  if (admin) await page.getByLabel('Register as an admin').check();
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByText(`Signed in as ${email}`).waitFor();
}

async function createTask(page: Page, title: string, seconds: number) {
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Due in how many').fill(String(seconds));
  await page.getByRole('button', { name: 'Create task' }).click();
  await page.getByRole('listitem', { name: `Task ${title}` }).waitFor();
}

(chromiumInstalled ? test : test.skip)(
  'the web app: sign in, watch a task complete live, reschedule, delete, sign out',
  async (t) => {
    // A walk through every screen: 25 s on a quiet machine, 40-55 s beside another suite, and past ava's 60 s
    // (the run's timeout, reset only when a test ends) beside two.
    t.timeout(180_000, 'the browser walk through every screen');
    const service = await startService({ worker: true });
    t.teardown(() => service.stop());
    const browser = await launchChromium();
    t.teardown(() => browser.close());
    const { page, problems, requested } = await openPage(browser, service);

    const started = Date.now();
    const response = await page.goto(service.baseUrl);
    t.is(response?.status(), 200);
    const csp = response?.headers()['content-security-policy'] ?? '';
    t.regex(csp, /script-src 'self'(;|$)/);
    t.notRegex(csp, /unsafe-inline|unsafe-eval/);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    t.log(`first load to the sign-in form: ${Date.now() - started} ms`);
    t.deepEqual(await axeViolations(page), [], 'sign-in screen');
    await screenshots(page, 'sign-in');

    // A bad password: the API's message next to the field.
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.getByText('must be at least 8 characters').waitFor();

    const email = 'alice@example.com';
    await register(page, email, true);
    const listed = Date.now();
    await page.getByRole('heading', { name: 'Tasks (everyone’s)' }).waitFor();
    t.log(`sign-in to a usable list: ${Date.now() - listed} ms`);
    const token = await page.evaluate(() => sessionStorage.getItem('task-manager-token'));
    t.truthy(token, 'the token is in sessionStorage');
    t.is(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

    // A task due in 3 s: pending with a countdown, then completed without a reload.
    await createTask(page, 'Watch me', 3);
    const item = page.getByRole('listitem', { name: 'Task Watch me' });
    t.regex((await item.textContent()) ?? '', /Pending.*Due .*in \d+\.\d s/s);
    const newest = await fetch(`${service.baseUrl}/tasks?limit=1`, { headers: { authorization: `Bearer ${token}` } });
    const dueAt = Date.parse(((await newest.json()) as { due_at: string }[])[0]?.due_at ?? '');
    await item.getByText('Completed', { exact: true }).waitFor({ timeout: 10_000 });
    const shownAfter = Date.now() - dueAt;
    t.log(`shown completed ${shownAfter} ms after its due time, without a reload`);
    t.true(shownAfter < 1000, `${shownAfter} ms`);

    // Reschedule one, delete one.
    await createTask(page, 'Move me', 3600);
    await screenshots(page, 'tasks');
    t.deepEqual(await axeViolations(page), [], 'tasks screen');
    const moving = page.getByRole('listitem', { name: 'Task Move me' });
    await moving.getByRole('button', { name: 'Reschedule' }).click();
    await moving.getByLabel('New due time, in seconds from now').fill('2');
    await moving.getByRole('button', { name: 'Save' }).click();
    await moving.getByText('Completed', { exact: true }).waitFor({ timeout: 10_000 });
    await createTask(page, 'Delete me', 3600);
    await page.getByRole('listitem', { name: 'Task Delete me' }).getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('listitem', { name: 'Task Delete me' }).waitFor({ state: 'detached' });

    // A validation message next to its field.
    await page.getByLabel('Title').fill('Too far');
    await page.getByLabel('Due in how many').fill('999999999');
    await page.getByRole('button', { name: 'Create task' }).click();
    await page.getByText('must be at most 31536000 (365 days)').waitFor();

    // Webhooks: add an endpoint, its secret shown once with a copy button.
    await page.getByRole('button', { name: 'Webhooks' }).click();
    await page.getByLabel('URL').fill('http://127.0.0.1:9/hook');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    await page.getByRole('button', { name: 'Copy secret' }).click();
    await page.getByText('Copied').waitFor();
    t.regex(await page.evaluate(() => (globalThis as any).navigator.clipboard.readText()), /^whsec_/);
    t.deepEqual(await axeViolations(page), [], 'webhooks screen');
    await screenshots(page, 'webhooks');

    // API keys: make one with two scopes, shown once with a copy button; it works from curl's side; revoke it.
    await page.getByRole('button', { name: 'API keys' }).click();
    await page.getByLabel('Name').fill('CI deploys');
    await page.getByRole('checkbox', { name: 'tasks:write' }).check();
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByRole('button', { name: 'Copy key' }).click();
    await page.getByText('Copied').waitFor();
    const apiKey: string = await page.evaluate(() => (globalThis as any).navigator.clipboard.readText());
    t.regex(apiKey, /^tm_[0-9A-Za-z]{49}$/);
    const byKey = await fetch(`${service.baseUrl}/tasks`, { headers: { authorization: `Bearer ${apiKey}` } });
    t.is(byKey.status, 200);
    await page.getByRole('cell', { name: 'tasks:read, tasks:write' }).waitFor();
    await page.getByRole('cell', { name: `${apiKey.slice(0, 10)}…` }).waitFor();
    t.deepEqual(await axeViolations(page), [], 'API keys screen');
    await screenshots(page, 'keys');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('button', { name: 'Revoke CI deploys' }).click();
    await page.getByText('No API keys yet.').waitFor();
    const revoked = await fetch(`${service.baseUrl}/tasks`, { headers: { authorization: `Bearer ${apiKey}` } });
    t.is(revoked.status, 401);

    // Schedules: the next five times shown before saving; create, pause, resume, edit; its occurrences in
    // the task list; delete.
    await page.getByRole('button', { name: 'Schedules', exact: true }).click();
    const newSchedule = page.getByRole('form', { name: 'New schedule' });
    await newSchedule.getByLabel('Title').fill('Stand-up');
    await newSchedule.getByLabel('Cron').fill('0 9 * * MON-FRI');
    const preview = newSchedule.getByRole('region', { name: 'Next five times' });
    await preview.waitFor();
    t.is(await preview.getByRole('listitem').count(), 5);
    t.deepEqual(await axeViolations(page), [], 'schedules screen');
    await newSchedule.getByRole('button', { name: 'Create schedule' }).click();
    await page.getByRole('heading', { name: 'Stand-up' }).waitFor();
    await page.getByRole('button', { name: 'Pause Stand-up' }).click();
    await page.getByText('paused', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Resume Stand-up' }).click();
    await page.getByRole('button', { name: 'Pause Stand-up' }).waitFor();
    await page.getByRole('button', { name: 'Edit Stand-up' }).click();
    const edit = page.getByRole('form', { name: 'Edit Stand-up' });
    await edit.getByLabel('Cron').fill('30 8 * * *');
    await edit.getByRole('button', { name: 'Save' }).click();
    await page.getByText('30 8 * * *', { exact: true }).waitFor();
    await screenshots(page, 'schedules');
    await page.getByRole('button', { name: 'Occurrences of Stand-up' }).click();
    await page.getByRole('heading', { name: 'Occurrences of Stand-up' }).waitFor();
    const occurrences = page.getByRole('list', { name: 'Tasks' }).getByRole('listitem');
    await occurrences.first().waitFor();
    t.is(await occurrences.count(), 1, 'its one pending occurrence');
    await page.getByRole('button', { name: 'Schedules', exact: true }).click();
    await page.getByRole('button', { name: 'Delete Stand-up' }).click();
    await page.getByText('No schedules yet.').waitFor();

    // Administration: the queue and the users.
    await page.getByRole('button', { name: 'Administration' }).click();
    await page.getByText('Pending tasks').waitFor();
    await page.getByRole('cell', { name: email, exact: true }).waitFor();
    t.deepEqual(await axeViolations(page), [], 'administration screen');
    await screenshots(page, 'admin');

    // Another user, in another browser context, never sees the first user's tasks.
    const other = await openPage(browser, service);
    await other.page.goto(service.baseUrl);
    await register(other.page, 'bob@example.com');
    await other.page.getByRole('heading', { name: 'Your tasks' }).waitFor();
    await createTask(other.page, 'Bob only', 3600);
    t.is(await other.page.getByRole('listitem', { name: /^Task (Watch me|Move me)$/ }).count(), 0);
    t.deepEqual(other.problems, []);

    // Sign out: the list is gone, and the old token is refused.
    await page.getByRole('button', { name: 'Tasks' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    t.is(await page.getByRole('listitem', { name: 'Task Watch me' }).count(), 0);
    t.is(await page.evaluate(() => sessionStorage.getItem('task-manager-token')), null);
    const refused = await fetch(`${service.baseUrl}/me`, { headers: { authorization: `Bearer ${token}` } });
    t.is(refused.status, 401);

    // Chromium logs every 4xx answer to a fetch; the two invalid forms above were sent on purpose.
    const refusedForms = problems.filter((text) => text.includes('status of 400 (Bad Request)'));
    t.is(refusedForms.length, 2);
    t.deepEqual(
      problems.filter((text) => !refusedForms.includes(text)),
      [],
      'no other console error (a CSP violation would be one)',
    );
    const outside = [...requested, ...other.requested].filter((url) => !url.startsWith(service.baseUrl));
    t.deepEqual(outside, [], 'no request left 127.0.0.1');

    // The page's own weight: its HTML, JS and CSS, gzipped.
    const own = requested.filter((url) => url === `${service.baseUrl}/` || url.includes('/app/'));
    let compressed = 0;
    for (const url of new Set(own)) compressed += gzipSync(Buffer.from(await (await fetch(url)).arrayBuffer())).length;
    t.log(`the page's own weight: ${(compressed / 1024).toFixed(1)} KB gzipped, ${new Set(own).size} files`);
    t.true(compressed < 100 * 1024);
    await readFile(path.join(artifacts, 'app-tasks-1280.png')); // the screenshots are there
  },
);
