/**
 * shaper-proxy under test, as users run it: the real CLI in its own process, with a config file
 * written to a temp dir. Each app forwards one listen port to one target, with no shaping.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CLI, PROXY_NODE_FLAGS, freePort, spawnChild, waitForPort, type Child } from './children.js';

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
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shaper-bench-'));
  const file = path.join(dir, 'bench.json');
  await fs.writeFile(file, JSON.stringify(config, null, 2));
  const child = spawnChild('shaper-proxy', process.execPath, [...PROXY_NODE_FLAGS, CLI, '--config', file, '--log-level', logLevel]);
  const stop = async () => {
    await child.kill();
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    for (const name of opts.probe ?? Object.keys(apps)) await waitForPort(ports[name]!, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, ports, config, stop };
}
