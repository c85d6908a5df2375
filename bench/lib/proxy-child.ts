/**
 * shaper-proxy under test, as users run it: the real CLI in its own process, with a config file
 * written to a temp dir. Each app forwards one listen port to one target, with no shaping.
 */
import { freePort, startProxyProcess, type Child } from './children.js';

export interface ProxyChild {
  child: Child;
  /** app name -> the port the proxy listens on */
  ports: Record<string, number>;
  config: unknown;
  stop(): Promise<void>;
}

/**
 * `apps`: app name -> target "host:port". Waits until the ports of `probe` (default: all apps)
 * accept connections; leave out apps whose backend must not see a stray connection.
 */
export async function startProxyChild(
  apps: Record<string, string>,
  opts: { probe?: string[]; logLevel?: string } = {},
): Promise<ProxyChild> {
  const logLevel = opts.logLevel ?? 'warn';
  const ports: Record<string, number> = {};
  for (const name of Object.keys(apps)) ports[name] = await freePort();
  const config = {
    apps: Object.entries(apps).map(([name, target]) => ({ name, ports: [ports[name]], targets: [target] })),
    bind: '127.0.0.1',
    admin: 'off',
    // One check at start, none during the runs (a check connecting mid-run would be noise, and
    // iperf3's server treats a stray connection as a client).
    health: { interval: '1h' },
    log: { level: logLevel },
    drainTimeout: '0s',
  };
  const probe = (opts.probe ?? Object.keys(apps)).map((name) => ports[name]!);
  const { child, stop } = await startProxyProcess(config, probe, logLevel);
  return { child, ports, config, stop };
}
