/**
 * The deploy files read only metrics the proxy exports: every metric name in the Grafana dashboard's
 * expressions and variables and in the alert rules must appear in a real scrape of /metrics. The
 * scrape comes from the CLI as operators run it (a config file, so the reload metrics exist) after
 * traffic through a Foo app and a TLS app (the latency histograms, the certificate expiry), both in a
 * shaped tier (the caps, the shaping delay), in fleet mode with a real redis-server (the
 * shaper_cluster_* metrics). Without redis-server the fleet names are checked against the catalogue
 * (src/observe/catalog.ts) instead, and the test says so. Names are compared as samples are named
 * (`_bucket`, `_sum`, `_count` included), so a `_bucket` of a gauge would fail too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CATALOG } from '../../src/observe/catalog.js';
import { ROOT, TLS_DIR, backendFor, cleanup, cliFor, connect, rawServer, readAll, tempDir, tlsConnect, waitFor } from '../helpers.js';
import { RedisServer, haveRedis } from '../redis.js';
import { dashboardQueries, loadDashboard } from './dashboard.js';
import { GRAFANA_BUILTINS, expandGrafana, labelValuesMetric, parsePromql } from './promql.js';

interface Use {
  where: string;
  name: string;
}

/** The metric names each deploy file reads, with where. */
function uses(): Use[] {
  const out: Use[] = [];
  const dashboard = loadDashboard();
  const values = { ...GRAFANA_BUILTINS, datasource: 'prometheus', instance: '.*' };
  for (const q of dashboardQueries(dashboard)) {
    for (const s of parsePromql(expandGrafana(q.expr, values)).selectors) out.push({ where: `grafana ${q.where}`, name: s.name });
  }
  for (const v of dashboard.templating.list) {
    const query = typeof v.query === 'string' ? v.query : v.query.query;
    const name = labelValuesMetric(query);
    if (v.type === 'query') {
      assert.ok(name, `variable ${v.name}: a label_values(metric, label) query`);
      out.push({ where: `grafana variable ${v.name}`, name });
    }
  }
  const alerts = parse(fs.readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  for (const r of alerts.groups.flatMap((g) => g.rules)) {
    const { selectors, errors } = parsePromql(r.expr);
    assert.deepEqual(errors, [], r.alert);
    for (const s of selectors) out.push({ where: `alert ${r.alert}`, name: s.name });
  }
  return out;
}

/** Sample names in a text exposition (`name{labels} value` or `name value`). */
function sampleNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)[{ ]/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

/** A Foo target: answers each `REQ <seq> ...` line with `ACK <seq>`, and ends when the client does. */
async function fooTarget(t: Parameters<typeof rawServer>[0]) {
  return rawServer(t, (s) => {
    let partial = '';
    s.on('data', (d: Buffer) => {
      partial += d.toString('latin1');
      for (let i = partial.indexOf('\n'); i >= 0; i = partial.indexOf('\n')) {
        const seq = /^REQ (\S+)/.exec(partial.slice(0, i))?.[1];
        partial = partial.slice(i + 1);
        if (seq) s.write(`ACK ${seq}\n`);
      }
    });
    s.on('end', () => s.end());
  });
}

test('every metric the dashboard and the alerts read is in a real scrape after traffic (TLS, a tier, a fleet)', async (t) => {
  const used = uses();
  assert.ok(used.length > 50, `${used.length} metric uses`);

  const redis = haveRedis() ? await RedisServer.start(t) : undefined;
  const dir = await tempDir(t, 'shaper-names-');
  const target = await fooTarget(t);
  const sink = await backendFor(t, 'sink');
  const file = path.join(dir, 'proxy.json');
  const MB = 1_000_000;
  fs.writeFileSync(
    file,
    JSON.stringify({
      bind: '127.0.0.1',
      admin: { listen: '127.0.0.1:0' },
      health: { interval: '10s' },
      apps: [
        { name: 'web', ports: [0], targets: [target.address], protocol: 'foo' },
        { name: 'secure', ports: [0], targets: [target.address], tls: { cert: path.join(TLS_DIR, 'server.pem'), key: path.join(TLS_DIR, 'server-key.pem') } },
        { name: 'bulk', ports: [0], targets: [sink.address] },
      ],
      tiers: { free: { connection: { down: 50 * MB, up: 1 * MB }, customer: { down: 80 * MB }, total: { down: 100 * MB, up: 100 * MB } } },
      defaultTier: 'free',
      global: { down: 1000 * MB },
      ...(redis ? { cluster: { redis: redis.url, instance: 'deploy-names', rebalanceInterval: '100ms', memberTimeout: '3s', redisTimeout: '2s' } } : {}),
    }),
  );
  const proxy = cliFor(t, ['--config', file]);
  const portOf = async (app: string) => (await proxy.waitLog((l) => l['msg'] === 'listening' && l['app'] === app, 10_000, `${app} listening`))['port'] as number;
  const [web, secure, bulk] = [await portOf('web'), await portOf('secure'), await portOf('bulk')];
  const admin = (await proxy.waitLog((l) => l['msg'] === 'listening' && l['what'] === 'admin', 10_000, 'the admin API'))['port'] as number;

  // traffic: a Foo exchange, and the same over TLS
  const plain = await connect(web);
  const answer = readAll(plain);
  plain.end('REQ 1 hello\nREQ 2 again\n');
  assert.equal((await answer).toString(), 'ACK 1\nACK 2\n');
  plain.destroy();
  const tls = await tlsConnect(secure);
  const back = readAll(tls);
  tls.end('REQ 3 secure\n');
  assert.equal((await back).toString(), 'ACK 3\n');
  tls.destroy();

  // a fleet shares a cap while connections wait for it: 8 MB up at 1 MB/s, open during the scrape
  const held = await connect(bulk);
  cleanup(t, () => held.destroy());
  held.write(Buffer.alloc(8 * MB));

  const scrape = async () => sampleNames(await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text());
  // the close events of the first two reach the histograms; in a fleet, a demand exchange sets the shares
  const ready = (n: Set<string>) => n.has('shaper_connection_duration_seconds_bucket') && n.has('shaper_shaping_delay_seconds_bucket') && (!redis || n.has('shaper_cluster_share'));
  let names = new Set<string>();
  await waitFor(async () => ready((names = await scrape())), 10_000, 'the scrape after traffic').catch((err: Error) => {
    throw new Error(`${err.message}: ${['shaper_connection_duration_seconds_bucket', 'shaper_shaping_delay_seconds_bucket', 'shaper_cluster_share'].filter((n) => !names.has(n)).join(', ')} not scraped`);
  });

  const fleetFromCatalog = new Set(Object.values(CATALOG).map((s) => s.name).filter((n) => n.startsWith('shaper_cluster_')));
  if (!redis) t.diagnostic('redis-server not installed: the shaper_cluster_* names are checked against src/observe/catalog.ts, not a scrape');
  const missing = used.filter((u) => !names.has(u.name) && !(!redis && fleetFromCatalog.has(u.name)));
  assert.deepEqual(missing, [], 'names read by the deploy files but not in /metrics');

  // and the check is not vacuous: what the scrape holds, the files use (histograms through their buckets)
  const usedNames = new Set(used.map((u) => u.name));
  for (const n of ['shaper_tls_certificate_expiry_timestamp_seconds', 'shaper_config_last_reload_successful', 'shaper_cap_bytes_per_second', 'shaper_foo_response_duration_seconds_bucket', 'process_cpu_seconds_total']) {
    assert.ok(names.has(n) && usedNames.has(n), n);
  }
});

/**
 * The dashboard shows every metric of the catalogue but shaper_foo_rate (moving averages the proxy
 * samples itself; rate(shaper_foo_messages_total) says the same over Prometheus' own window).
 */
test('the dashboard reads every metric of the catalogue', () => {
  const dashboard = loadDashboard();
  const values = { ...GRAFANA_BUILTINS, datasource: 'prometheus', instance: '.*' };
  const read = new Set(
    dashboardQueries(dashboard).flatMap((q) => parsePromql(expandGrafana(q.expr, values)).selectors.map((s) => s.name.replace(/_(bucket|sum|count)$/, ''))),
  );
  const unread = Object.values(CATALOG)
    .map((s) => s.name)
    .filter((n) => !read.has(n) && n !== 'shaper_foo_rate');
  assert.deepEqual(unread, []);
});
