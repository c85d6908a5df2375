/**
 * The middles `shaper-bench peers` compares, each as a child process forwarding two routes
 * (source, foo) to the bench backends: shaper-proxy (the real CLI), a plain Node pipe, nginx
 * (stream module) and HAProxy (mode tcp). nginx and HAProxy are found on PATH; the bench never
 * installs them.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { freePort, ready, spawnChild, startProxyProcess, spawnNodeScript, waitForPort, which, type Child } from '../children.js';
import {
  haproxyCfg,
  haproxyHasBwlim,
  haproxyVersion,
  loadModulePath,
  nginxConf,
  nginxStreamBuild,
  proxyConfig,
  type PeerRoutes,
} from './configs.js';

/** proxy: shaper-proxy with dataPlane "auto" (the native relay where built); proxy-js: the JavaScript data plane. */
export type PeerName = 'proxy' | 'proxy-js' | 'pipe' | 'nginx' | 'haproxy';
export const PEERS: PeerName[] = ['proxy', 'proxy-js', 'pipe', 'nginx', 'haproxy'];

export interface Backends {
  source: number;
  foo: number;
}

export interface Middle {
  peer: PeerName;
  /** The process doing the proxying (CPU and RSS are read from it). */
  child: Child;
  /** Ports to dial. */
  source: number;
  foo: number;
  /** The config text or object the middle runs with, for the JSON report. */
  config: unknown;
  /** shaper-proxy's data plane in use, as its /status says ("native" or "js"). */
  dataPlane?: string;
  stop(): Promise<void>;
}

/** What is available on this machine, and why not when it is not. */
export interface Availability {
  nginx?: { bin: string; streamModule: string | undefined; version: string };
  haproxy?: { bin: string; version: string; bwlim: boolean };
  notes: string[];
}

/** stdout and stderr of a short command (nginx -V writes to stderr), '' when it cannot run. */
function output(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

/** The stream module's .so on this machine (Debian: /usr/lib/nginx/modules, or via modules-available). */
function findStreamModule(prefix: string): string | undefined {
  const candidates = [
    '/usr/lib/nginx/modules/ngx_stream_module.so',
    '/usr/lib64/nginx/modules/ngx_stream_module.so',
    '/usr/share/nginx/modules/ngx_stream_module.so',
    '/usr/local/nginx/modules/ngx_stream_module.so',
    path.join(prefix, 'modules/ngx_stream_module.so'),
  ];
  for (const dir of ['/usr/share/nginx/modules-available', '/etc/nginx/modules-enabled']) {
    try {
      for (const f of fs.readdirSync(dir)) {
        if (!f.includes('stream')) continue;
        const p = loadModulePath(fs.readFileSync(path.join(dir, f), 'utf8'), prefix);
        if (p) candidates.unshift(p);
      }
    } catch {
      // not there
    }
  }
  return candidates.find((c) => fs.existsSync(c));
}

export function detect(skip: Set<PeerName>): Availability {
  const notes: string[] = [];
  const a: Availability = { notes };
  if (!skip.has('nginx')) {
    const bin = which('nginx');
    if (!bin) {
      notes.push('nginx: not on PATH, skipped (Debian: nginx libnginx-mod-stream; the bench does not install it).');
    } else {
      const v = output(bin, ['-V']);
      const version = /nginx\/(\S+)/.exec(v)?.[1] ?? '?';
      const build = nginxStreamBuild(v);
      const prefix = /--prefix=(\S+)/.exec(v)?.[1] ?? '/usr/share/nginx';
      if (build === 'none') {
        notes.push(`nginx ${version}: built without the stream module, skipped.`);
      } else if (build === 'dynamic') {
        const mod = findStreamModule(prefix);
        if (!mod) notes.push(`nginx ${version}: ngx_stream_module.so not found (Debian: libnginx-mod-stream), skipped.`);
        else a.nginx = { bin, streamModule: mod, version };
      } else {
        a.nginx = { bin, streamModule: undefined, version };
      }
    }
  }
  if (!skip.has('haproxy')) {
    const bin = which('haproxy');
    if (!bin) {
      notes.push('haproxy: not on PATH, skipped (Debian: haproxy; the bench does not install it).');
    } else {
      const vv = output(bin, ['-vv']);
      a.haproxy = { bin, version: haproxyVersion(vv) ?? '?', bwlim: haproxyHasBwlim(vv) };
    }
  }
  return a;
}

async function tempDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'shaper-bench-peers-'));
}

async function routes(backends: Backends): Promise<PeerRoutes> {
  return {
    source: { listen: await freePort(), backend: backends.source },
    foo: { listen: await freePort(), backend: backends.foo },
  };
}

/** Waits for both ports; on failure stops the child and rethrows with what it said. */
async function up(m: Middle, extra: () => string = () => ''): Promise<Middle> {
  try {
    await waitForPort(m.foo, m.child);
    await waitForPort(m.source, m.child);
    return m;
  } catch (err) {
    const said = extra();
    await m.stop();
    throw new Error(`${(err as Error).message}${said ? `\n${said}` : ''}`);
  }
}

export async function startProxy(backends: Backends, cap: number, plane: 'auto' | 'js' = 'auto', shared = 0): Promise<Middle> {
  const r = await routes(backends);
  const adminPort = await freePort();
  const config = proxyConfig(r, cap, { dataPlane: plane, shared, adminPort });
  const { child, stop } = await startProxyProcess(config, []);
  const m = await up({ peer: plane === 'js' ? 'proxy-js' : 'proxy', child, source: r.source.listen, foo: r.foo.listen, config, stop });
  await waitForPort(adminPort, child);
  const status = (await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json()) as { dataPlane?: { active?: string } };
  m.dataPlane = status.dataPlane?.active ?? '?';
  return m;
}

export async function startPipe(backends: Backends): Promise<Middle> {
  const child = spawnNodeScript('plain-pipe', 'plain-pipe', ['--no-delay', `127.0.0.1:${backends.source}`, `127.0.0.1:${backends.foo}`]);
  try {
    const p = await ready<{ ports: number[] }>(child);
    return { peer: 'pipe', child, source: p.ports[0]!, foo: p.ports[1]!, config: { noDelay: true }, stop: () => child.kill() };
  } catch (err) {
    await child.kill();
    throw err;
  }
}

export async function startNginx(nginx: NonNullable<Availability['nginx']>, backends: Backends, cap: number): Promise<Middle> {
  const r = await routes(backends);
  const dir = await tempDir();
  const config = nginxConf({ routes: r, cap, dir, streamModule: nginx.streamModule });
  const file = path.join(dir, 'nginx.conf');
  await fsp.writeFile(file, config);
  const child = spawnChild('nginx', nginx.bin, ['-c', file, '-p', `${dir}/`, '-g', 'daemon off;']);
  const errorLog = () => {
    try {
      return `nginx error.log: ${fs.readFileSync(path.join(dir, 'error.log'), 'utf8').trim().slice(-2000)}`;
    } catch {
      return '';
    }
  };
  return up(
    {
      peer: 'nginx',
      child,
      source: r.source.listen,
      foo: r.foo.listen,
      config,
      async stop() {
        await child.kill();
        await fsp.rm(dir, { recursive: true, force: true });
      },
    },
    errorLog,
  );
}

export async function startHaproxy(haproxy: NonNullable<Availability['haproxy']>, backends: Backends, cap: number): Promise<Middle> {
  const r = await routes(backends);
  const dir = await tempDir();
  const config = haproxyCfg({ routes: r, cap });
  const file = path.join(dir, 'haproxy.cfg');
  await fsp.writeFile(file, config);
  // -db: foreground, no master: the process started is the one that proxies.
  const child = spawnChild('haproxy', haproxy.bin, ['-db', '-f', file]);
  return up({
    peer: 'haproxy',
    child,
    source: r.source.listen,
    foo: r.foo.listen,
    config,
    async stop() {
      await child.kill();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  });
}
