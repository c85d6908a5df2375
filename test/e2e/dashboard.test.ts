/**
 * The dashboard page (`GET /`) in headless Chromium, driven by playwright-core, with real traffic:
 * it loads with no console errors and no request leaving the admin server; a tier's rates move
 * both ways while a download and an upload flow, against the caps that bind them; close reasons,
 * refusals, latencies with units and the version show; with a config file, the reload state (a
 * failed reload's problems by key path); in fleet mode, the members, Redis and the shares; the plans
 * (a customer over its quota and the schedule window in force).
 * Leaves screenshots in bench/results/ (dashboard.png, dashboard-reload.png, dashboard-fleet.png).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import net from 'node:net';
import { app, backendFor, cleanup, cliFor, config, connect, freePort, proxyFor, readAll, ROOT, sha256, tempDir, tier, waitFor } from '../helpers.js';
import { haveRedis, RedisServer } from '../redis.js';
import { VERSION } from '../../src/version.js';

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

/** Chromium (closed when the test ends) with a watched page for the admin server at `origin`. */
async function openPage(t: TestContext, origin: string): Promise<{ page: Page; errors: string[]; foreign: string[] }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  cleanup(t, () => browser.close());
  return watchedPage(browser, origin);
}

/** A download through the proxy's `port` that reads and drops what comes (destroyed when the test ends). */
async function drainedDownload(t: TestContext, port: number): Promise<void> {
  const download = await connect(port);
  cleanup(t, () => download.destroy());
  download.on('error', () => {});
  download.resume();
}

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

test('the dashboard: both directions against the caps that bind, latencies with units, close reasons, refusals and the version; no console errors', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip('chromium not installed (.ci/run installs it)');
    return;
  }
  const source = await backendFor(t, 'source', { sourceBytes: 50_000_000 });
  const sink = await backendFor(t, 'sink');
  const echo = await backendFor(t, 'echo');
  // Each connection may move 4 Mbit/s down and 2 up, the tier 16 and 8: with two customers
  // connected, what binds is their 8 Mbit/s down (4 up), not the tier's total.
  const free = tier('free', { connection: { down: 500_000, up: 250_000 }, total: { down: 2_000_000, up: 1_000_000 } });
  const probes = { id: 'probes', tier: 'other', match: { sources: ['127.0.0.3/32', '127.0.0.4/32'] } };
  const proxy = await proxyFor(
    t,
    config([app('web', [source.address]), app('upload', [sink.address]), app('echo', [echo.address])], {
      admin: { host: '127.0.0.1', port: 0 },
      tiers: { free, other: tier('other') },
      customers: [probes],
      defaultTier: 'free',
      limits: { perSource: { maxConnections: 1 } },
    }),
    { backends: [source, sink, echo] },
  );
  const origin = `http://127.0.0.1:${proxy.adminPort}`;

  for (const path of ['/', '/dashboard']) {
    const res = await fetch(origin + path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(await res.text(), /^<!doctype html>/);
  }

  const { page, errors, foreign } = await openPage(t, origin);

  await page.goto(origin + '/');
  await until(() => figure(page, 'free', 'rateDown').count(), 10_000, 'the free tier\'s card (is GET /stats there?)');
  assert.equal(await page.locator('#version').textContent(), `v${VERSION}`);
  assert.equal(await page.locator('#config').isHidden(), true, 'no config file: no config section');
  assert.equal(await page.locator('#fleet').isHidden(), true, 'running alone: no fleet section');

  // A download from 127.0.0.1 and an upload from 127.0.0.2: two customers of the free tier.
  const download = net.connect({ port: proxy.portOf('web'), host: '127.0.0.1', localAddress: '127.0.0.1' });
  const upload = net.connect({ port: proxy.portOf('upload'), host: '127.0.0.1', localAddress: '127.0.0.2' });
  for (const s of [download, upload]) {
    cleanup(t, () => s.destroy());
    s.on('error', () => {});
  }
  download.resume(); // read and drop: the caps pace it
  const chunk = Buffer.alloc(64 * 1024, 'u');
  const pump = () => {
    while (!upload.destroyed && upload.write(chunk));
  };
  upload.on('drain', pump);
  upload.once('connect', pump);

  for (const dir of ['Down', 'Up']) {
    const rate = figure(page, 'free', `rate${dir}`);
    const value = async () => Number((await rate.getAttribute('data-value')) || 0);
    const first = await until(async () => (await value()) || 0, 10_000, `a non-zero ${dir} rate`);
    assert.match((await rate.textContent())!, /^\d[\d.]* (bit|kbit|Mbit|Gbit)\/s$/);
    // The raw figure (bytes/s): the text may read the same twice in a row at the cap.
    await until(async () => { const v = await value(); return v > 0 && v !== first; }, 10_000, `the ${dir} rate to move from ${first} B/s`);
  }
  // What binds: the two customers' connection caps, not the tier's total.
  await until(async () => (await figure(page, 'free', 'bindingDown').getAttribute('data-value')) === '1000000', 10_000, 'the binding cap down (2 × 500 kB/s)');
  assert.equal(await figure(page, 'free', 'bindingDown').textContent(), "of 8.00 Mbit/s \u00b7 2 customers' caps");
  assert.equal(await figure(page, 'free', 'bindingUp').getAttribute('data-value'), '500000');
  assert.equal(await figure(page, 'free', 'capDown').textContent(), '16.0 Mbit/s (2.00 MB/s)');
  const chart = figure(page, 'free', 'chart');
  // Both directions drawn (at least two samples each) and their caps labelled.
  await until(async () => {
    const [down, up] = await Promise.all(['down', 'up'].map(async (d) => (await chart.locator(`path.line[data-dir="${d}"]`).getAttribute('d')) ?? ''));
    return down.includes('L') && up.includes('L');
  }, 10_000, 'both lines in the chart');
  assert.equal(await chart.locator('text.caplabel[data-dir="down"]').textContent(), '\u2193 cap 8.00 Mbit/s');
  assert.equal(await chart.locator('text.caplabel[data-dir="up"]').textContent(), '\u2191 cap 4.00 Mbit/s');
  const top = Number(await chart.getAttribute('data-top')) / 1e6;
  assert.ok(top >= 8 && top < 16, `the chart is scaled to what binds (8 Mbit/s), not the tier total (16): top ${top} Mbit/s`);

  // A connection that closes (reason done; from 127.0.0.4, as 127.0.0.1 has its one), and one
  // refused at accept (a second from 127.0.0.3).
  const ping = net.connect({ port: proxy.portOf('echo'), host: '127.0.0.1', localAddress: '127.0.0.4' });
  const pong = readAll(ping);
  ping.end('ping');
  assert.equal((await pong).toString(), 'ping');
  ping.destroy();
  const first = net.connect({ port: proxy.portOf('echo'), host: '127.0.0.1', localAddress: '127.0.0.3' });
  cleanup(t, () => first.destroy());
  await new Promise((r) => first.once('connect', r));
  await waitFor(() => proxy.connections.size === 3, 3000, 'the probe connection counted');
  const second = net.connect({ port: proxy.portOf('echo'), host: '127.0.0.1', localAddress: '127.0.0.3' });
  second.on('error', () => {});
  await new Promise((r) => second.once('close', r));
  await until(async () => (await page.locator('[data-field="closed.done"]').getAttribute('data-value').catch(() => null)) === '1', 10_000, 'the close reason "done"');
  await until(async () => (await page.locator('[data-field="refused.source_connections"]').getAttribute('data-value').catch(() => null)) === '1', 10_000, 'the refusal');
  assert.equal(await page.locator('tr[data-reason="source_connections"] td').first().getAttribute('title'), 'limits.perSource.maxConnections');
  assert.equal(await page.locator('#refused').getAttribute('data-value'), '1');

  // Latencies carry their units.
  const p50 = page.locator('[data-app="web"][data-field="connect.p50"]');
  await until(() => p50.count(), 10_000, 'the web app\'s connect latency');
  assert.match((await p50.textContent())!, /^(<0\.01 ms|\d[\d.]* (ms|s))$/);

  assert.match((await page.locator('#active').textContent())!, /^[1-9]\d*$/);
  assert.equal(await page.locator('#banner').isHidden(), true);
  assert.equal(await page.locator('[data-target] .dot.healthy').count(), 3);

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

  const { page, errors, foreign } = await openPage(t, origin);
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

test('with a config file: the config in force and the last reload; a failed reload shows its problems by key path', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip('chromium not installed (.ci/run installs it)');
    return;
  }
  const dir = await tempDir(t, 'shaper-dashboard-');
  const backend = await backendFor(t, 'echo');
  const [port, admin] = [await freePort(), await freePort()];
  const file = join(dir, 'proxy.json');
  const write = (down: string) =>
    writeFile(file, JSON.stringify({ watch: false, bind: '127.0.0.1', admin: `127.0.0.1:${admin}`, apps: [{ name: 'web', ports: [port], targets: [backend.address] }], tiers: { free: { connection: { down } } } }));
  await write('1mbit');
  const proxy = cliFor(t, ['--config', file]);
  await proxy.waitLog((l) => l['msg'] === 'listening' && l['what'] === 'admin', 10_000, 'the admin API');
  const origin = `http://127.0.0.1:${admin}`;
  const reload = () => fetch(`${origin}/reload`, { method: 'POST' });

  const { page, errors, foreign } = await openPage(t, origin);
  await page.goto(origin + '/');
  const pill = page.locator('#reload');
  await until(async () => ((await pill.getAttribute('data-state')) === 'loaded' ? true : false), 10_000, 'the config as loaded');
  assert.match((await pill.textContent())!, /^config loaded \d+s ago$/);
  assert.equal(await page.locator('#config-file').textContent(), file);
  assert.equal(await page.locator('#config-hash').textContent(), sha256(await readFile(file)).slice(0, 12));
  assert.equal(await page.locator('#config-last').textContent(), 'none since the start');
  assert.equal(await page.locator('#version').textContent(), `v${VERSION}`);

  await write('1 megabit');
  assert.equal((await reload()).status, 400);
  await until(async () => (await pill.getAttribute('data-state')) === 'failed', 10_000, 'the failed reload');
  assert.match((await pill.textContent())!, /^reload failed \d+s ago$/);
  assert.match((await page.locator('#config-last').textContent())!, /^failed: the old config stays in force · \d+s ago · admin API$/);
  assert.match((await page.locator('#config-errors li').first().textContent())!, /^tiers\.free\.connection\.down: "1 megabit" is not a rate/);
  assert.equal(await page.locator('#config-reloads').textContent(), '0 ok · 1 failed');
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'bench/results/dashboard-reload.png'), fullPage: true });

  await write('2mbit');
  assert.equal((await reload()).status, 200);
  await until(async () => (await pill.getAttribute('data-state')) === 'reloaded', 10_000, 'the reload that worked');
  assert.equal(await page.locator('#config-errors').isHidden(), true);
  assert.equal(await page.locator('#config-hash').textContent(), sha256(await readFile(file)).slice(0, 12));
  assert.equal(await figure(page, 'free', 'capMore').textContent(), 'per connection \u2193 2.00 Mbit/s');
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, []);
});

test('in fleet mode: the members, Redis and this instance\'s shares', async (t) => {
  if (!existsSync(CHROMIUM)) return t.skip('chromium not installed (.ci/run installs it)');
  if (!haveRedis()) return t.skip('redis-server not installed (.ci/run installs it)');
  const redis = await RedisServer.start(t);
  const source = await backendFor(t, 'source', { sourceBytes: 50_000_000 });
  const free = tier('free', { total: { down: 1_000_000, up: U } });
  const member = (instance: string) =>
    proxyFor(
      t,
      config([app('web', [source.address])], {
        admin: { host: '127.0.0.1', port: 0 },
        tiers: { free },
        defaultTier: 'free',
        cluster: { redis: redis.url, instance, fallbackShare: null, rebalanceInterval: 100, memberTimeout: 3000, redisTimeout: 2000, prefix: `shaper-dash-${process.pid}:` },
      }),
      { backends: [source] },
    );
  const a = await member('dash-a');
  await member('dash-b');
  const origin = `http://127.0.0.1:${a.adminPort}`;
  // A download through a: the tier's fleet-wide cap has demand, so a has a share of it.
  await drainedDownload(t, a.portOf('web'));

  const { page, errors, foreign } = await openPage(t, origin);
  await page.goto(origin + '/');
  await until(async () => (await page.locator('#fleet-count').getAttribute('data-value')) === '2', 10_000, 'two members');
  assert.equal(await page.locator('#fleet').isHidden(), false);
  assert.equal(await page.locator('#fleet-instance').textContent(), 'dash-a');
  assert.equal(await page.locator('#fleet-redis').getAttribute('data-state'), 'up');
  // (A loaded machine may time a Redis command out: " · 2 failed commands" may follow.)
  assert.match((await page.locator('#fleet-redis').textContent())!, /^up since \d+s ago\b/);
  assert.deepEqual(await page.locator('#fleet-members tr').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-member'), r.getAttribute('data-live')]).sort()), [
    ['dash-a', 'true'],
    ['dash-b', 'true'],
  ]);
  const share = page.locator('tr[data-scope="tier:free:down"] [data-field="share"]');
  await until(() => share.count(), 10_000, 'a share of the free tier\'s cap');
  const value = Number(await share.getAttribute('data-value'));
  assert.ok(value > 0 && value <= 1, `share ${value}`);
  assert.match((await share.textContent())!, /^\d[\d.]* %$/);
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'bench/results/dashboard-fleet.png'), fullPage: true });
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
  await drainedDownload(t, proxy.portOf('web'));

  const { page, errors, foreign } = await openPage(t, origin);
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
