/**
 * `GET /status`: per app its listeners, its targets (health, connections, weight in that app,
 * last error) and, for apps with `tls`, the certificates it serves; the fleet when there is one.
 */
import type { AppConfig, ProxyConfig } from '../config/types.js';
import type { ListenerStatus } from '../server/acceptor.js';
import type { AppUpstream } from '../upstream/upstreams.js';

/** What /status reads of the proxy. */
export interface StatusParts {
  /** wall-clock ms when the proxy started */
  readonly startedAt: number;
  config(): ProxyConfig;
  connections(): number;
  listeners(): ListenerStatus[];
  app(name: string): AppUpstream | undefined;
  /** the certificates an app with `tls` serves, the default first */
  certificates(app: string): readonly unknown[];
  /** the fleet's view (config `cluster`), or null */
  fleet(): unknown;
  /** the config file in force: its hash, when it was loaded, the last reload's result (null: no file) */
  configFile(): unknown;
  /** which data plane moves plain TCP bytes (native or js, and why) */
  dataPlane(): unknown;
}

export function statusView(parts: StatusParts): unknown {
  const listeners = parts.listeners();
  const fleet = parts.fleet();
  return {
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - parts.startedAt) / 1000),
    connections: parts.connections(),
    config: parts.configFile(),
    dataPlane: parts.dataPlane(),
    ...(fleet ? { cluster: fleet } : {}),
    apps: parts.config().apps.map((app) => {
      const up = parts.app(app.name);
      return {
        name: app.name,
        balance: app.balance,
        protocol: app.protocol,
        ...(app.tls ? { tls: tlsStatus(parts.certificates(app.name), app.tls) } : {}),
        listeners: listeners.filter((l) => l.app === app.name),
        ...(up?.pool ? { preconnect: { ...app.preconnect, ...up.pool.counts } } : {}),
        ...(up?.wakeView ? { wake: up.wakeView() } : {}),
        targets: (up?.targets ?? []).map((t, i) => ({
          address: t.address,
          weight: up?.weights[i] ?? 1,
          health: t.health,
          active: t.active,
          total: t.total,
          latency: t.latencyView(),
          ...(up?.pool ? { preconnected: up.pool.idle(t) } : {}),
          ...(t.lastError ? { lastError: t.lastError } : {}),
        })),
      };
    }),
  };
}

/**
 * An app's TLS: the default certificate's fields at the top (as before several certificates),
 * then every certificate it serves and how clients are checked.
 */
function tlsStatus(certificates: readonly unknown[], tls: NonNullable<AppConfig['tls']>): unknown {
  if (certificates.length === 0) return null;
  return { ...(certificates[0] as object), certificates, clientAuth: tls.clientAuth, ...(tls.clientCa ? { clientCa: tls.clientCa.path } : {}) };
}
