/**
 * shaper-proxy as a child process on a config of the bench's choosing (tiers, customers), with
 * an admin port, so scenarios can change tiers live.
 */
import { freePort, ready, spawnNodeScript, startProxyProcess, type Child } from './children.js';

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
  const { child, file, stop } = await startProxyProcess(config, [adminPort, port]);
  return { child, port, adminPort, file, stop };
}

/** Runs `fn` with an endless source backend (bench/lib/backend.ts `source`) as its target, stopped after. */
export async function withSource<T>(fn: (target: string) => Promise<T>): Promise<T> {
  const backend = spawnNodeScript('backend', 'backend', ['source']);
  try {
    const ports = await ready<{ source: number }>(backend);
    return await fn(`127.0.0.1:${ports.source}`);
  } finally {
    await backend.kill();
  }
}
