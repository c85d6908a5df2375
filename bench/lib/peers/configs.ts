/**
 * Config text for the peers of `shaper-bench peers`: nginx (stream module), HAProxy (mode tcp)
 * and shaper-proxy. Pure functions of their inputs (no processes, no files), so the unit test can
 * check them without nginx or HAProxy installed.
 *
 * Every peer forwards two listen ports: `source` (bulk download, and the capped scenario) and
 * `foo` (ping-pong). `cap` is bytes per second per connection, server to client; 0 = unlimited.
 */

export interface Route {
  /** The port the peer listens on (127.0.0.1). */
  listen: number;
  /** The backend port it forwards to (127.0.0.1). */
  backend: number;
}

export interface PeerRoutes {
  source: Route;
  foo: Route;
}

export interface NginxOptions {
  routes: PeerRoutes;
  /** Bytes per second per connection, upstream to client (`proxy_download_rate`); 0 = unlimited. */
  cap: number;
  /** Temp dir: error log and pid file go there. */
  dir: string;
  /** Absolute path of ngx_stream_module.so, or undefined when the stream module is built in. */
  streamModule: string | undefined;
  /** worker_connections; each proxied connection takes two. */
  workerConnections?: number;
}

/**
 * nginx.conf for one worker, no master (`master_process off`: the process we start is the one
 * that proxies, so its /proc CPU and RSS are the whole cost). `daemon off` comes from the command
 * line (`-g 'daemon off;'`): nginx refuses the directive twice.
 */
export function nginxConf(o: NginxOptions): string {
  const rate = Math.max(0, Math.round(o.cap));
  const wc = o.workerConnections ?? 4096;
  const server = (r: Route) =>
    [
      '    server {',
      `        listen 127.0.0.1:${r.listen};`,
      `        proxy_pass 127.0.0.1:${r.backend};`,
      `        proxy_download_rate ${rate};`,
      '        proxy_connect_timeout 5s;',
      '        proxy_timeout 10m;',
      '    }',
    ].join('\n');
  return [
    '# written by shaper-bench peers',
    ...(o.streamModule ? [`load_module ${o.streamModule};`] : []),
    'master_process off;',
    'worker_processes 1;',
    `worker_rlimit_nofile ${wc * 2 + 64};`,
    `error_log ${o.dir}/error.log warn;`,
    `pid ${o.dir}/nginx.pid;`,
    '',
    'events {',
    `    worker_connections ${wc};`,
    '}',
    '',
    'stream {',
    server(o.routes.source),
    server(o.routes.foo),
    '}',
    '',
  ].join('\n');
}

export interface HaproxyOptions {
  routes: PeerRoutes;
  /** Bytes per second per connection, server to client; 0 = unlimited. Needs the bwlim filter (2.7+). */
  cap: number;
  maxconn?: number;
}

/**
 * haproxy.cfg: one thread, mode tcp, a `listen` section per route. With a cap, the source route
 * gets HAProxy's bandwidth limitation filter (2.7+): `filter bwlim-out` with a per-stream default
 * limit, enabled for every connection by `tcp-request content set-bandwidth-limit`.
 */
export function haproxyCfg(o: HaproxyOptions): string {
  const maxconn = o.maxconn ?? 4096; // 2 fds per connection: stays under a 20000 nofile limit
  const rate = Math.max(0, Math.round(o.cap));
  const listen = (name: string, r: Route, capped: boolean) => [
    `listen ${name}`,
    `    bind 127.0.0.1:${r.listen}`,
    ...(capped
      ? [`    filter bwlim-out cap default-limit ${rate} default-period 1s`, '    tcp-request content set-bandwidth-limit cap']
      : []),
    `    server ${name}1 127.0.0.1:${r.backend}`,
    '',
  ];
  return [
    '# written by shaper-bench peers',
    'global',
    '    nbthread 1',
    `    maxconn ${maxconn}`,
    '',
    'defaults',
    '    mode tcp',
    `    maxconn ${maxconn}`,
    '    timeout connect 5s',
    '    timeout client 10m',
    '    timeout server 10m',
    '',
    ...listen('source', o.routes.source, rate > 0),
    ...listen('foo', o.routes.foo, false),
  ].join('\n');
}

/** Whether `haproxy -vv` lists the bandwidth limitation filter (HAProxy 2.7+). */
export function haproxyHasBwlim(vv: string): boolean {
  const filters = vv.slice(vv.indexOf('Available filters'));
  return /\bbwlim-out\b/.test(filters) || /\[BWLIM\]/.test(filters);
}

/** The version from `haproxy -vv` / `haproxy -v`, e.g. "2.6.12". */
export function haproxyVersion(vv: string): string | undefined {
  return /HA-?Proxy version (\S+)/i.exec(vv)?.[1];
}

/**
 * How nginx has the stream module, from `nginx -V`: built in ('static'), as a loadable module
 * ('dynamic'), or not at all ('none').
 */
export function nginxStreamBuild(v: string): 'static' | 'dynamic' | 'none' {
  if (/--with-stream=dynamic\b/.test(v)) return 'dynamic';
  if (/--with-stream(\s|$)/.test(v)) return 'static';
  return 'none';
}

/**
 * The module path in a `load_module` line of a modules-available/*.conf file (relative paths are
 * relative to nginx's prefix), or undefined.
 */
export function loadModulePath(confText: string, prefix: string): string | undefined {
  const m = /^\s*load_module\s+([^;\s]*ngx_stream_module\.so)\s*;/m.exec(confText);
  if (!m) return undefined;
  const p = m[1]!;
  return p.startsWith('/') ? p : `${prefix.replace(/\/$/, '')}/${p}`;
}

/** shaper-proxy's config: two apps; with a cap, a default tier capping each connection's download. */
/** How the proxy middle runs: its data plane, and a cap shared by every connection of `source` (bytes/s) instead of one each. */
export interface ProxyOptions {
  dataPlane?: 'auto' | 'js';
  shared?: number;
  /** admin listener (the bench reads /status for the data plane in use) */
  adminPort?: number;
}

export function proxyConfig(routes: PeerRoutes, cap: number, o: ProxyOptions = {}): Record<string, unknown> {
  return {
    dataPlane: o.dataPlane ?? 'auto',
    apps: [
      { name: 'source', ports: [routes.source.listen], targets: [`127.0.0.1:${routes.source.backend}`] },
      { name: 'foo', ports: [routes.foo.listen], targets: [`127.0.0.1:${routes.foo.backend}`] },
    ],
    bind: '127.0.0.1',
    admin: o.adminPort ? `127.0.0.1:${o.adminPort}` : 'off',
    health: { interval: '1h' },
    log: { level: 'warn' },
    drainTimeout: '0s',
    // The same tier as the `shaping` scenario's case 1 (rtt 50ms), written as in the issue.
    ...(cap > 0 ? { tiers: { cap: { rtt: '50ms', connection: { down: cap === 64 * 1024 ? '64KiB/s' : cap } } }, defaultTier: 'cap' } : {}),
    // One customer for every connection of `source`, its cap shared max-min fairly.
    ...(o.shared ? { tiers: { shared: { rtt: '50ms', customer: { down: o.shared } } }, customers: [{ id: 'everyone', tier: 'shared', match: { apps: ['source'] } }] } : {}),
  };
}
