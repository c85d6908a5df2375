/**
 * shaper-proxy as a child process on a config of the bench's choosing (tiers, customers), with
 * an admin port, so scenarios can change tiers live.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CLI, PROXY_NODE_FLAGS, freePort, spawnChild, waitForPort, type Child } from './children.js';

export interface ShapedProxy {
  child: Child;
  port: number;
  adminPort: number;
  file: string;
  stop(): Promise<void>;
}

/** `shaping` is merged into a one-app config forwarding to `target`. */
export async function startShapedProxy(target: string, shaping: Record<string, unknown>): Promise<ShapedProxy> {
  const port = await freePort();
  const adminPort = await freePort();
  const config = {
    apps: [{ name: 'bench', ports: [port], targets: [target] }],
    bind: '127.0.0.1',
    admin: { listen: `127.0.0.1:${adminPort}` },
    health: { interval: '1h' },
    log: { level: 'warn' },
    drainTimeout: '0s',
    ...shaping,
  };
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shaper-bench-'));
  const file = path.join(dir, 'bench.json');
  await fs.writeFile(file, JSON.stringify(config, null, 2));
  const child = spawnChild('shaper-proxy', process.execPath, [...PROXY_NODE_FLAGS, CLI, '--config', file, '--log-level', 'warn']);
  const stop = async () => {
    await child.kill();
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(adminPort, child);
    await waitForPort(port, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, port, adminPort, file, stop };
}
