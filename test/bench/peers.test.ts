/** Config generation of `shaper-bench peers` (no nginx or HAProxy needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  haproxyCfg,
  haproxyHasBwlim,
  haproxyVersion,
  loadModulePath,
  nginxConf,
  nginxStreamBuild,
  proxyConfig,
  type PeerRoutes,
} from '../../bench/lib/peers/configs.js';
import { peersTable, type PeerRun } from '../../bench/lib/peers/report.js';

const routes: PeerRoutes = { source: { listen: 41001, backend: 42001 }, foo: { listen: 41002, backend: 42002 } };

test('nginx.conf: stream servers with listen, proxy_pass and the download rate', () => {
  const conf = nginxConf({ routes, cap: 65536, dir: '/tmp/x', streamModule: '/usr/lib/nginx/modules/ngx_stream_module.so' });
  assert.match(conf, /^load_module \/usr\/lib\/nginx\/modules\/ngx_stream_module\.so;$/m);
  assert.match(conf, /^worker_processes 1;$/m);
  assert.match(conf, /^master_process off;$/m);
  assert.match(conf, /^error_log \/tmp\/x\/error\.log warn;$/m);
  assert.match(conf, /^pid \/tmp\/x\/nginx\.pid;$/m);
  assert.match(conf, /stream \{/);
  assert.match(conf, /listen 127\.0\.0\.1:41001;\s+proxy_pass 127\.0\.0\.1:42001;\s+proxy_download_rate 65536;/);
  assert.match(conf, /listen 127\.0\.0\.1:41002;\s+proxy_pass 127\.0\.0\.1:42002;/);
  assert.doesNotMatch(conf, /daemon/, 'daemon off comes from -g; nginx refuses it twice');
  // Unshaped: rate 0 is unlimited; a built-in stream module needs no load_module.
  const plain = nginxConf({ routes, cap: 0, dir: '/tmp/x', streamModule: undefined });
  assert.match(plain, /proxy_download_rate 0;/);
  assert.doesNotMatch(plain, /load_module/);
  // Braces balance.
  assert.equal((conf.match(/\{/g) ?? []).length, (conf.match(/\}/g) ?? []).length);
});

test('haproxy.cfg: mode tcp, one thread, bind/server per route, bwlim only with a cap', () => {
  const plain = haproxyCfg({ routes, cap: 0 });
  assert.match(plain, /^\s+nbthread 1$/m);
  assert.match(plain, /^\s+mode tcp$/m);
  assert.match(plain, /listen source\n\s+bind 127\.0\.0\.1:41001\n\s+server source1 127\.0\.0\.1:42001/);
  assert.match(plain, /listen foo\n\s+bind 127\.0\.0\.1:41002\n\s+server foo1 127\.0\.0\.1:42002/);
  assert.doesNotMatch(plain, /bwlim/);
  const capped = haproxyCfg({ routes, cap: 65536 });
  assert.match(capped, /filter bwlim-out cap default-limit 65536 default-period 1s/);
  assert.match(capped, /tcp-request content set-bandwidth-limit cap/);
  // Only the source route is capped.
  assert.doesNotMatch(capped.slice(capped.indexOf('listen foo')), /bwlim/);
});

test('detection helpers read nginx -V, modules-available and haproxy -vv', () => {
  assert.equal(nginxStreamBuild('configure arguments: --with-http_ssl_module --with-stream=dynamic --with-mail=dynamic'), 'dynamic');
  assert.equal(nginxStreamBuild('configure arguments: --with-stream --with-stream_ssl_module'), 'static');
  assert.equal(nginxStreamBuild('configure arguments: --with-stream_ssl_module'), 'none');
  assert.equal(loadModulePath('load_module modules/ngx_stream_module.so;\n', '/usr/share/nginx'), '/usr/share/nginx/modules/ngx_stream_module.so');
  assert.equal(loadModulePath('load_module /opt/m/ngx_stream_module.so;', '/x'), '/opt/m/ngx_stream_module.so');
  assert.equal(loadModulePath('load_module modules/ngx_mail_module.so;', '/x'), undefined);
  const vv26 = 'HAProxy version 2.6.12-1+deb12u4 2026/10/17\nAvailable filters :\n\t[CACHE] cache\n\t[COMP] compression\n\t[SPOE] spoe\n';
  const vv28 = 'HAProxy version 2.8.5 2023/12/01\nAvailable filters :\n\t[BWLIM] bwlim-in\n\t[BWLIM] bwlim-out\n\t[CACHE] cache\n';
  assert.equal(haproxyVersion(vv26), '2.6.12-1+deb12u4');
  assert.equal(haproxyHasBwlim(vv26), false);
  assert.equal(haproxyHasBwlim(vv28), true);
});

test("shaper-proxy's config: a default tier capping each connection only when capped", () => {
  const plain = proxyConfig(routes, 0) as { apps: { ports: number[]; targets: string[] }[]; defaultTier?: string };
  assert.deepEqual(plain.apps.map((a) => [a.ports[0], a.targets[0]]), [
    [41001, '127.0.0.1:42001'],
    [41002, '127.0.0.1:42002'],
  ]);
  assert.equal(plain.defaultTier, undefined);
  const capped = proxyConfig(routes, 65536) as { tiers: Record<string, { connection: { down: unknown } }>; defaultTier: string };
  assert.equal(capped.defaultTier, 'cap');
  assert.equal(capped.tiers['cap']!.connection.down, '64KiB/s');
});

test('the table: medians per peer, proxy/peer ratios, dashes where a peer has no run', () => {
  const runs: PeerRun[] = [
    { scenario: 'download', peer: 'proxy', round: 0, result: { bytesPerSecond: 900e6, seconds: 1, middleCpuSeconds: 0.9 } },
    { scenario: 'download', peer: 'pipe', round: 0, result: { bytesPerSecond: 1000e6, seconds: 1, middleCpuSeconds: 0.8 } },
    { scenario: 'pingpong', peer: 'proxy', round: 0, result: { rps: 100, p50: 1, p99: 2 } },
    { scenario: 'pingpong', peer: 'pipe', round: 0, result: { rps: 200, p50: 1, p99: 1 } },
  ];
  runs.push(
    { scenario: 'iperf', peer: 'proxy', round: 0, result: { bitsPerSecond: 8e9, seconds: 5, middleCpuSeconds: 1, peakRssBytes: 60 * 2 ** 20 } },
    { scenario: 'iperf', peer: 'pipe', round: 0, result: { bitsPerSecond: 4e9, seconds: 5, middleCpuSeconds: 2, peakRssBytes: 50 * 2 ** 20 } },
  );
  const t = peersTable(runs, { peers: ['proxy', 'pipe'], planes: { proxy: 'native' }, rounds: 1, connections: 1000, pingConnections: 8, capKiB: 64, redisClients: 50, sharedMiB: 10 });
  assert.deepEqual(t.columns, ['scenario / metric', 'proxy', 'pipe', 'proxy/pipe']);
  assert.deepEqual(t.rows[0], ['data plane', 'native', '–', '']);
  assert.deepEqual(t.rows[1], ['unshaped download MB/s (1 conn)', '900', '1000', '0.900']);
  assert.deepEqual(t.rows[3], ['ping-pong req/s (8 conns)', '100', '200', '0.500']);
  const capRow = t.rows.find((r) => r[0]!.startsWith('1000 × 64 KiB/s'))!;
  assert.deepEqual(capRow.slice(1), ['–', '–', '–']);
  const iperf = t.rows.findIndex((r) => r[0]!.startsWith('iperf3'));
  assert.deepEqual(t.rows[iperf], ['iperf3, 1 stream, Gbit/s', '8.00', '4.00', '2.000']);
  // CPU per GB: 1 CPU-s over 5 s at 1 GB/s (5 GB) against 2 over 2.5 GB.
  assert.deepEqual(t.rows[iperf + 1], ['  middle CPU-s per GB', '0.200', '0.800', '0.250']);
  assert.deepEqual(t.rows.at(-1), ['peak RSS MiB, any scenario', '60.0', '50.0', '1.200']);
});
