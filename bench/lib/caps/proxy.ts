/**
 * The proxy under test for the caps bench: the user's config with every app pointed at the caps
 * backend, its ports (and the customers' match.ports) moved to free ports, admin on a free port,
 * written to a temp file and run as a child process like the bin runs it.
 */
import { fromFlyFormat, isPlainObject } from '../../../src/config/fly.js';
import { readConfigFile } from '../../../src/config/formats.js';
import { freePort, startProxyProcess, type Child } from '../children.js';

type Raw = Record<string, unknown>;

/** The config file parsed as written (JSON, JSONC, YAML or TOML, by the proxy's own reader), before validation. */
export async function readRawConfig(file: string): Promise<Raw> {
  const raw = fromFlyFormat(await readConfigFile(file));
  if (!isPlainObject(raw)) throw new Error(`${file}: not a config object`);
  return raw;
}

/**
 * Pure: `raw` with every app's targets replaced by `target`, each port p by portMap(p), binds on
 * 127.0.0.1, admin on `adminPort`, customers' match.ports mapped too; no health noise, no state
 * file, warn-level logs.
 */
export function rewriteConfig(raw: Raw, target: string, portMap: Map<number, number>, adminPort: number): Raw {
  const mapPort = (p: unknown) => (typeof p === 'number' && portMap.has(p) ? portMap.get(p)! : p);
  const apps = Array.isArray(raw['apps']) ? raw['apps'] : [];
  const out: Raw = {
    ...raw,
    apps: apps.map((a: unknown) => {
      if (!isPlainObject(a)) return a;
      const { bind: _bind, ...app } = a;
      return { ...app, ports: Array.isArray(app['ports']) ? app['ports'].map(mapPort) : app['ports'], targets: [target] };
    }),
    bind: '127.0.0.1',
    admin: { listen: `127.0.0.1:${adminPort}` },
    health: { ...(isPlainObject(raw['health']) ? raw['health'] : {}), interval: '1h' },
    log: { level: 'warn' },
    drainTimeout: '0s',
  };
  delete out['stateFile'];
  if (Array.isArray(raw['customers'])) {
    out['customers'] = raw['customers'].map((c: unknown) => {
      if (!isPlainObject(c) || !isPlainObject(c['match']) || !Array.isArray(c['match']['ports'])) return c;
      return { ...c, match: { ...c['match'], ports: c['match']['ports'].map(mapPort) } };
    });
  }
  return out;
}

/** Every port the raw config's apps listen on. */
export function appPorts(raw: Raw): number[] {
  const apps = Array.isArray(raw['apps']) ? raw['apps'] : [];
  return apps.flatMap((a: unknown) => (isPlainObject(a) && Array.isArray(a['ports']) ? a['ports'].filter((p): p is number => typeof p === 'number') : []));
}

export interface CapsProxy {
  child: Child;
  file: string;
  portMap: Map<number, number>;
  adminPort: number;
  stop(): Promise<void>;
}

export async function startCapsProxy(raw: Raw, target: string): Promise<CapsProxy> {
  const portMap = new Map<number, number>();
  for (const p of appPorts(raw)) portMap.set(p, await freePort());
  const adminPort = await freePort();
  const { child, file, stop } = await startProxyProcess(rewriteConfig(raw, target, portMap, adminPort), [adminPort, ...portMap.values()]);
  return { child, file, portMap, adminPort, stop };
}
