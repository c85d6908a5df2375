/**
 * Plans over real sockets (issue 15): the quota switch of an open connection to `then`, the
 * refusal and closing without `then`, usage kept across a restart of the CLI (a child process)
 * with `GET /usage` and `shaper-proxy ctl usage`, and the usage log's lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  app,
  backendFor,
  cliFor,
  config,
  connect,
  ctl,
  freePort,
  pattern,
  proxyFor,
  readAll,
  sha256,
  tempDir,
  tier,
  waitFor,
  type TestProxy,
} from '../helpers.js';

const U = Infinity;
const MB = 1_000_000;
const ADMIN = { host: '127.0.0.1', port: 0 };

async function get(port: number | undefined, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

const usageOf = async (proxy: TestProxy, id: string) => (await get(proxy.adminPort, `/usage/${id}`)).body;

test('over its quota, an open connection moves to "then" without a reconnect, every byte arrives; without "then", connections are closed and refused', async (t) => {
  const source = await backendFor(t, 'source', { sourceBytes: 2.5 * MB });
  const proxy = await proxyFor(
    t,
    config([app('web', [source.address]), app('capped', [source.address])], {
      admin: ADMIN,
      accounting: { period: 'month', timezone: 'UTC', log: null },
      tiers: {
        free: tier('free', { customer: { down: 4 * MB, up: U }, quota: { bytes: MB, direction: 'down', then: 'slow' } }),
        slow: tier('slow', { customer: { down: MB, up: U } }),
        capped: tier('capped', { customer: { down: 4 * MB, up: U }, quota: { bytes: 100_000, direction: 'both', then: null } }),
      },
      customers: [{ id: 'shop', tier: 'capped', match: { apps: ['capped'] } }],
      defaultTier: 'free',
    }),
    { backends: [source] },
  );

  const client = await connect(proxy.portOf('web'));
  const received = readAll(client);
  const switched = await waitFor(async () => {
    const u = await usageOf(proxy, '127.0.0.1');
    return u.inTier === 'slow' ? u : undefined;
  }, 10_000, 'the switch to "slow"');
  assert.deepEqual([switched.tier, switched.exceeded, switched.remaining, switched.quota], ['free', true, 0, { bytes: MB, direction: 'down', then: 'slow' }]);
  const conns = (await get(proxy.adminPort, '/connections')).body as { tier: string }[];
  assert.deepEqual(conns.map((c) => c.tier), ['slow'], 'the open connection is in "slow" now');
  const data = await received;
  assert.equal(sha256(data), sha256(pattern(2.5 * MB)), 'every byte, in order, on the one connection');
  client.end();
  await waitFor(() => proxy.closedByReason.get('done') === 1, 5000, 'the close');

  // The capped customer: its open connection is closed at 100 kB, the next one refused at once.
  const first = await readAll(await connect(proxy.portOf('capped')));
  assert.ok(first.length >= 100_000 && first.length < 2.5 * MB, `${first.length} bytes before the close`);
  const second = await readAll(await connect(proxy.portOf('capped')));
  assert.equal(second.length, 0);
  await waitFor(() => proxy.closedByReason.get('quota_exceeded') === 2, 5000, 'two closes for quota_exceeded');
  const shop = await usageOf(proxy, 'shop');
  assert.deepEqual([shop.tier, shop.inTier, shop.exceeded, shop.remaining], ['capped', 'capped', true, 0]);
  assert.equal(first.length, shop.down, 'every byte counted reached the client before the close (on the native data plane too)');
  const metrics = (await get(proxy.adminPort, '/metrics')).body as string;
  assert.match(metrics, /shaper_connections_refused_total\{reason="quota_exceeded"\} 1\n/);
});

test('usage survives a restart of the CLI (the store beside the state file); GET /usage pages; ctl usage', async (t) => {
  const dir = await tempDir(t);
  const source = await backendFor(t, 'source', { sourceBytes: 300_000 });
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(dir, 'proxy.json');
  await writeFile(
    file,
    JSON.stringify({
      apps: [{ name: 'web', ports: [port], bind: '127.0.0.1', targets: [source.address] }],
      admin: { listen: `127.0.0.1:${adminPort}` },
      accounting: { period: 'month', timezone: 'Europe/Berlin' },
      tiers: { free: { customer: { down: '100mbit' }, quota: { bytes: '10MB', direction: 'down', then: 'slow' } }, slow: { customer: { down: '1mbit' } } },
      defaultTier: 'free',
    }),
  );
  const admin = `http://127.0.0.1:${adminPort}`;
  const start = async () => {
    const c = cliFor(t, ['--config', file]);
    await c.waitLog((l) => l['msg'] === 'listening' && l['port'] === port, 10_000, 'listening');
    return c;
  };
  const first = await start();
  assert.equal((await readAll(await connect(port))).length, 300_000);
  await waitFor(async () => (await get(adminPort, '/usage/127.0.0.1')).body.down === 300_000, 5000, 'the usage of 127.0.0.1');

  const table = await ctl(['usage', '--admin', admin]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^\s*CUSTOMER\s+TIER\s+DOWN\s+UP\s+QUOTA\s+LEFT\s+EXCEEDED/);
  assert.match(table.stdout, /\n127\.0\.0\.1\s+free\s+300kB\s+0B\s+10MB down then slow\s+9\.7MB\s+no\s+\d\s+\d{4}-\d\d-01T00:00:00\+0[12]:00/);
  const one = await ctl(['usage', '127.0.0.1', '--json', '--admin', admin]);
  assert.equal(JSON.parse(one.stdout).remaining, 9_700_000);
  const missing = await ctl(['usage', 'nobody', '--admin', admin]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no usage of customer "nobody"/);

  first.proc.kill('SIGTERM');
  assert.equal(await first.exited, 0);
  await start();
  const after = (await get(adminPort, '/usage/127.0.0.1')).body;
  assert.deepEqual([after.down, after.up, after.connections, after.timezone], [300_000, 0, 0, 'Europe/Berlin'], 'read back from the store');
  const page = (await get(adminPort, '/usage?limit=1')).body;
  assert.deepEqual([page.customers.map((c: { customer: string }) => c.customer), page.next], [['127.0.0.1'], '127.0.0.1']);
  assert.deepEqual((await get(adminPort, '/usage?after=127.0.0.1')).body, { customers: [], next: null });
  assert.equal((await get(adminPort, '/usage?limit=0')).status, 400);
});

test('each closed period is one line of the usage log, and the lines add up to the bytes', async (t) => {
  const dir = await tempDir(t);
  const source = await backendFor(t, 'source', { sourceBytes: 400_000 });
  const proxy = await proxyFor(
    t,
    config([app('web', [source.address])], {
      admin: ADMIN,
      stateFile: join(dir, 'p.state.json'),
      accounting: { period: 1000, timezone: 'UTC', log: null },
      tiers: { t: tier('t', { connection: { down: 500_000, up: U } }) },
      defaultTier: 't',
    }),
    { backends: [source] },
  );
  assert.equal((await readAll(await connect(proxy.portOf('web')))).length, 400_000);
  const lines = (await waitFor(async () => {
    const text = await readFile(join(dir, 'p.usage.log'), 'utf8').catch(() => '');
    const parsed = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { customer: string; down: number; start: string; end: string; tier: string; up: number; timezone: string });
    return parsed.reduce((sum, l) => sum + l.down, 0) === 400_000 ? parsed : undefined;
  }, 10_000, 'usage log lines adding up to 400000 bytes'))!;
  for (const line of lines) {
    assert.deepEqual([line.customer, line.tier, line.up, line.timezone], ['127.0.0.1', 't', 0, 'UTC']);
    assert.equal(Date.parse(line.end) - Date.parse(line.start), 1000);
    assert.match(line.start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
  }
  assert.ok(lines.length >= 1);
});
