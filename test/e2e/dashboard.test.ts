/**
 * The dashboard page (`GET /`) in headless Chromium, driven by playwright-core: it loads with no
 * console errors and no request leaving the admin server, and a tier's down rate moves while a
 * download flows through the proxy. Leaves a screenshot in bench/results/dashboard.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { app, backendFor, cleanup, config, connect, proxyFor, ROOT, tier } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
// How Chromium must start on these machines: no sandbox as root, and no background traffic
// (the network is closed; its own connections would only be refused). Playwright adds a fresh
// --user-data-dir of its own.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = join(ROOT, 'bench/results/dashboard.png');

const U = Infinity;
/** Poll the page until `fn` is truthy (state that changes with the page's once-a-second polling). */
async function until<T>(fn: () => Promise<T>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const figure = (page: Page, tierName: string, field: string) => page.locator(`[data-tier="${tierName}"][data-field="${field}"]`).first();

/** A new page that records console errors, page errors, and requests to anywhere but `origin`. */
async function watchedPage(browser: Browser, origin: string): Promise<{ page: Page; errors: string[]; foreign: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  const foreign: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('request', (req) => {
    if (!req.url().startsWith(origin + '/')) foreign.push(req.url());
  });
  return { page, errors, foreign };
}

test('the dashboard shows a tier\'s down rate moving while a download flows, with no console errors', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip('chromium not installed (.ci/run installs it)');
    return;
  }
  const backend = await backendFor(t, 'source', { sourceBytes: 50_000_000 });
  const free = tier('free', { total: { down: 2_000_000, up: U } }); // 16 Mbit/s
  const proxy = await proxyFor(
    t,
    config([app('web', [backend.address])], { admin: { host: '127.0.0.1', port: 0 }, tiers: { free }, defaultTier: 'free' }),
    { backends: [backend] },
  );
  const origin = `http://127.0.0.1:${proxy.adminPort}`;

  for (const path of ['/', '/dashboard']) {
    const res = await fetch(origin + path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(await res.text(), /^<!doctype html>/);
  }

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  cleanup(t, () => browser.close());
  const { page, errors, foreign } = await watchedPage(browser, origin);

  await page.goto(origin + '/');
  await until(() => figure(page, 'free', 'rateDown').count(), 10_000, 'the free tier\'s card (is GET /stats there?)');

  const download = await connect(proxy.portOf('web'));
  cleanup(t, () => download.destroy());
  download.on('error', () => {});
  download.resume(); // read and drop: the tier's cap paces it

  const rateDown = figure(page, 'free', 'rateDown');
  const value = async () => Number((await rateDown.getAttribute('data-value')) || 0);
  const first = await until(async () => (await value()) || 0, 10_000, 'a non-zero down rate');
  assert.match((await rateDown.textContent())!, /^\d[\d.]* (bit|kbit|Mbit|Gbit)\/s$/);
  // The raw figure (bytes/s): the text may read "16.0 Mbit/s" twice in a row at the cap.
  await until(async () => { const v = await value(); return v > 0 && v !== first; }, 10_000, `the down rate to move from ${first} B/s`);
  // At least two samples in the chart, so the line is drawn.
  await until(async () => ((await figure(page, 'free', 'chart').locator('path.line').getAttribute('d')) ?? '').includes('L'), 10_000, 'a line in the chart');

  assert.equal(await figure(page, 'free', 'capDown').textContent(), '16.0 Mbit/s (2.00 MB/s)');
  assert.match((await page.locator('#active').textContent())!, /^[1-9]\d*$/);
  assert.equal(await page.locator('#banner').isHidden(), true);
  assert.equal(await page.locator('[data-target] .dot.healthy').count(), 1);

  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
});

test('with admin.token: the page opened as /?token= loads its files without it and polls /stats with the header', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip('chromium not installed (.ci/run installs it)');
    return;
  }
  const token = 'correct-horse-battery-staple';
  const free = tier('free', { total: { down: 2_000_000, up: U } });
  const proxy = await proxyFor(t, config([], { admin: { host: '127.0.0.1', port: 0, token }, tiers: { free } }));
  const origin = `http://127.0.0.1:${proxy.adminPort}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  cleanup(t, () => browser.close());

  const { page, errors, foreign } = await watchedPage(browser, origin);
  const refused: string[] = [];
  const statsAuth = new Set<string | undefined>();
  page.on('response', (res) => {
    if (res.status() >= 400) refused.push(`${res.status()} ${res.url()}`);
  });
  page.on('request', (req) => {
    if (new URL(req.url()).pathname === '/stats') statsAuth.add(req.headers()['authorization']);
  });
  await page.goto(`${origin}/?token=${token}`);
  await until(async () => (await figure(page, 'free', 'capDown').count()) > 0 && (await figure(page, 'free', 'capDown').textContent()) === '16.0 Mbit/s (2.00 MB/s)', 10_000, 'the free tier\'s cap');
  assert.equal(await page.locator('#banner').isHidden(), true);
  assert.deepEqual([...statsAuth], [`Bearer ${token}`]);
  assert.deepEqual(refused, []);
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
});

test('plans: the dashboard shows a customer over its quota (and the tier it went to) and the schedule window in force', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip('chromium not installed (.ci/run installs it)');
    return;
  }
  const backend = await backendFor(t, 'source', { sourceBytes: 400_000 });
  const window = { days: [0, 1, 2, 3, 4, 5, 6], from: 0, to: 24 * 60, customer: { down: 4_000_000 } };
  const proxy = await proxyFor(
    t,
    config([app('web', [backend.address])], {
      admin: { host: '127.0.0.1', port: 0 },
      accounting: { period: 'day', timezone: 'UTC', log: null },
      tiers: {
        free: tier('free', { customer: { down: 2_000_000, up: U }, quota: { bytes: 100_000, direction: 'down', then: 'slow' } }),
        slow: tier('slow', { customer: { down: 1_000_000, up: U } }),
        biz: tier('biz', { customer: { down: 1_000_000, up: U }, schedule: [window] }),
      },
      defaultTier: 'free',
    }),
    { backends: [backend] },
  );
  const origin = `http://127.0.0.1:${proxy.adminPort}`;
  const download = await connect(proxy.portOf('web'));
  cleanup(t, () => download.destroy());
  download.on('error', () => {});
  download.resume();

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  cleanup(t, () => browser.close());
  const { page, errors, foreign } = await watchedPage(browser, origin);
  await page.goto(origin + '/');
  const row = page.locator('#usage-body tr[data-customer="127.0.0.1"]');
  await until(async () => (await row.count()) > 0 && (await row.getAttribute('data-exceeded')) === 'true', 10_000, 'the customer over its quota');
  assert.equal(await row.locator('[data-field="inTier"]').textContent(), 'free \u2192 slow');
  assert.equal(await row.locator('[data-field="remaining"]').getAttribute('data-value'), '0');
  assert.ok(Number(await row.locator('[data-field="down"]').getAttribute('data-value')) >= 100_000);
  assert.match((await page.locator('#plans-period').textContent())!, /^period \d{4}-\d\d-\d\dT00:00:00\+00:00 \u2013 .* \(UTC\)$/);
  const biz = page.locator('#windows-list [data-tier="biz"]');
  assert.equal(await biz.getAttribute('data-value'), '0');
  assert.equal(await biz.textContent(), 'biz: window 1: sun,mon,tue,wed,thu,fri,sat 00:00\u201324:00');
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
});
