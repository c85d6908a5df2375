import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';
import type { AppConfig, ProxyConfig, ServedCertificate, ServerTlsConfig, TierConfig } from '../src/config/types.js';
import { PemFile } from '../src/config/tls.js';
import { createProxy, type Proxy } from '../src/index.js';
import { createLogger, silentLogger, type Logger } from '../src/log.js';
import type { TestContext } from 'node:test';
import type { Clock } from '../src/clock.js';

/** The repo root, from dist/test/helpers.js. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/src/cli.js');

/** TEST ONLY certificates (test/fixtures/tls/README.md). */
export const TLS_DIR = path.join(ROOT, 'test/fixtures/tls');
export const TEST_CA = fs.readFileSync(path.join(TLS_DIR, 'ca.pem'));

/** A fixture file as the config loader reads it, e.g. pemFile('server-key'). */
export function pemFile(name: string): PemFile {
  const file = path.join(TLS_DIR, `${name}.pem`);
  return new PemFile(file, fs.readFileSync(file));
}

/** The fixture cert `name` ("server", "other") and its key, chosen by SNI for `serverNames`. */
export function servedCertificate(name: string, serverNames: string[] = []): ServedCertificate {
  return { cert: pemFile(name), key: pemFile(`${name}-key`), serverNames };
}

/** An app's `tls` with the fixture cert `name` ("server", "server2"). */
export function serverTls(name = 'server', extra: Partial<ServerTlsConfig> = {}): ServerTlsConfig {
  return { certificates: [servedCertificate(name)], minVersion: 'TLSv1.2', handshakeTimeout: 10_000, clientAuth: 'none', ...extra };
}

/** A TLS client trusting the test CA; resolves once the handshake is done. */
export function tlsConnect(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: TEST_CA, allowHalfOpen: true, ...opts } as tls.ConnectionOptions, () => resolve(s));
    s.once('error', reject);
  });
}

export interface TlsTarget {
  address: string;
  /** TLS handshakes finished so far (real connections and the proxy's health checks) */
  handshakes(): number;
  /** With `proxyHeader`: each PROXY header read, v1 as its text (no CRLF), v2 as hex. */
  headers: string[];
}

/** Whether `buf` starts with a whole PROXY header: its length, 0 for not yet (v1 up to CRLF, v2 16 bytes and its length). */
function proxyHeaderLength(buf: Buffer): number {
  if (buf.subarray(0, 6).toString('latin1') === 'PROXY ') {
    const end = buf.indexOf('\r\n');
    return end < 0 ? 0 : end + 2;
  }
  return buf.length < 16 || buf.length < 16 + buf.readUInt16BE(14) ? 0 : 16 + buf.readUInt16BE(14);
}

/**
 * A TLS target on 127.0.0.1 with the fixture cert `cert` that answers like the collect backend
 * ("<sha256> <bytes>\n" after the client's FIN); with `proxyHeader` it first reads a PROXY header
 * (v1 or v2) off the raw socket, in clear. Every socket is destroyed and the server closed after the test.
 */
export async function startTlsTarget(t: TestContext, cert = 'backend', { proxyHeader = false } = {}): Promise<TlsTarget> {
  const context = tls.createSecureContext({ cert: pemFile(cert).pem, key: pemFile(`${cert}-key`).pem });
  const sockets = new Set<net.Socket>();
  const headers: string[] = [];
  let handshakes = 0;
  const serve = (raw: net.Socket): void => {
    const s = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    s.on('secure', () => handshakes++);
    s.on('error', () => {});
    answerWithHash(s);
  };
  const server = net.createServer({ allowHalfOpen: true }, (raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    if (!proxyHeader) return serve(raw);
    const onReadable = (): void => {
      const buf = raw.read() as Buffer | null;
      if (!buf) return;
      const length = proxyHeaderLength(buf);
      if (length === 0) return void raw.unshift(buf);
      raw.off('readable', onReadable);
      const header = buf.subarray(0, length);
      headers.push(header[0] === 0x50 ? header.toString('latin1').trimEnd() : header.toString('hex'));
      raw.unshift(buf.subarray(length));
      serve(raw);
    };
    raw.on('readable', onReadable);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, handshakes: () => handshakes, headers };
}

export type BackendKind = 'echo' | 'sink' | 'source' | 'collect';

export interface Backend {
  server: net.Server;
  port: number;
  address: string;
  /** Connections accepted so far (since the last resetCounts()). */
  accepted: number;
  /** Forget connections so far (the proxy's first health checks, say). */
  resetCounts(): void;
  /** sha256 and length of what each closed connection received, in close order. */
  received: { sha: string; bytes: number }[];
  /** Bytes read from every connection so far, counted as they arrive. */
  bytesIn: number;
  close(): Promise<void>;
}

/**
 * A loopback backend on a free port.
 *   echo:    sends back what it reads, half-close exact
 *   sink:    reads and counts, ends when the client ends
 *   source:  writes `sourceBytes` then ends its side, keeps reading
 *   collect: reads until the client's FIN, then answers "<sha256> <bytes>\n" and ends
 */
export async function startBackend(kind: BackendKind, opts: { sourceBytes?: number; port?: number } = {}): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  const b: Backend = {
    server: undefined as unknown as net.Server,
    port: 0,
    address: '',
    accepted: 0,
    received: [],
    bytesIn: 0,
    resetCounts() {
      b.accepted = 0;
      b.received.length = 0;
      b.bytesIn = 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => b.server.close(() => r()));
    },
  };
  b.server = net.createServer({ allowHalfOpen: true }, (socket) => {
    b.accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    socket.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
      b.bytesIn += d.length;
    });
    socket.on('end', () => {
      const sha = hash.digest('hex');
      b.received.push({ sha, bytes });
      if (kind === 'collect') socket.end(`${sha} ${bytes}\n`);
      else if (kind !== 'source') socket.end();
    });
    if (kind === 'echo') socket.pipe(socket, { end: false });
    if (kind === 'source') socket.end(pattern(opts.sourceBytes ?? 0));
  });
  await new Promise<void>((r) => b.server.listen(opts.port ?? 0, '127.0.0.1', () => r()));
  b.port = (b.server.address() as net.AddressInfo).port;
  b.address = `127.0.0.1:${b.port}`;
  return b;
}

/** Deterministic bytes that differ by position, so reordering or loss shows in a hash. */
export function pattern(n: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

export function sha256(buf: Buffer): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

/** A port that was free a moment ago (for child processes that need a fixed port). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function app(name: string, targets: string[], extra: Partial<AppConfig> = {}): AppConfig {
  return {
    name,
    ports: [0],
    bind: '127.0.0.1',
    targets: targets.map((address) => {
      const i = address.lastIndexOf(':');
      return { address, host: address.slice(0, i), port: Number(address.slice(i + 1)), weight: 1 };
    }),
    balance: 'round-robin',
    connectTimeout: 1000,
    idleTimeout: 0,
    protocol: 'tcp',
    ...extra,
  };
}

/** A tier with every level unlimited; `c` sets what the test needs. */
export function tier(name: string, c: Partial<TierConfig> = {}): TierConfig {
  const U = Infinity;
  return { name, rtt: 50, weight: 1, connection: { down: U, up: U }, customer: { down: U, up: U }, total: { down: U, up: U }, ...c };
}

export function config(apps: AppConfig[], extra: Partial<ProxyConfig> = {}): ProxyConfig {
  return {
    apps,
    health: { interval: 60_000, timeout: 500, unhealthyAfter: 2, healthyAfter: 1 },
    admin: null,
    log: { level: 'silent' },
    drainTimeout: 1000,
    observe: { latency: true, foo: true },
    tiers: {},
    global: { down: Infinity, up: Infinity },
    customers: [],
    defaultTier: null,
    stateFile: null,
    ...extra,
  };
}

/**
 * An in-process proxy with a silent logger; `stop()` shuts it down. Waits for
 * the first round of health checks, then resets the counts of `backends` so
 * tests see only their own connections.
 */
export async function startProxy(
  cfg: ProxyConfig,
  backends: Backend[] = [],
  log: Logger = silentLogger(),
  clock?: Clock,
): Promise<Proxy & { portOf(app: string, i?: number): number; stop(): Promise<void> }> {
  const proxy = createProxy(cfg, { log, ...(clock ? { clock } : {}) });
  await proxy.start();
  await waitFor(() => [...proxy.upstreams.byAddress.values()].every((t) => t.lastCheck !== undefined), 5000, 'first health checks');
  await new Promise((r) => setTimeout(r, 20)); // let the backends see the checks' FINs
  for (const b of backends) b.resetCounts();
  return Object.assign(proxy, {
    portOf(appName: string, i = 0) {
      const ls = proxy.listeners().filter((l) => l.app === appName && l.state === 'listening');
      const port = ls[i]?.boundPort;
      if (!port) throw new Error(`app ${appName} has no listening port #${i}`);
      return port;
    },
    async stop() {
      await proxy.shutdown(0);
    },
  });
}

/** A logger whose JSON lines the test can read (`lines`, parsed, in order). */
export function captureLogger(level = 'info'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Read everything until the peer's FIN (or close). */
export function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('close', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** Send `data`, half-close, and return everything the other side sends until its FIN. */
export async function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  const s = await connect(port);
  const out = readAll(s);
  s.end(data);
  const got = await out;
  s.destroy();
  return got;
}

/** Poll `fn` until it returns truthy, up to `ms` (for state that changes asynchronously). */
export async function waitFor<T>(fn: () => T | Promise<T>, ms = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Child {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  /** Parsed JSON log lines seen so far. */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
  waitLog(pred: (l: Record<string, unknown>) => boolean, ms?: number, what?: string): Promise<Record<string, unknown>>;
  kill(): Promise<void>;
}

/**
 * Run the CLI as a real child process; `kill()` is safe to call in a finally. `fdLimit`: run it
 * under `ulimit -n` (through sh, which then execs node, so the pid is node's).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { fdLimit?: number } = {}): Child {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const [command, argv] =
    opts.fdLimit === undefined
      ? [process.execPath, [CLI, ...args]]
      : ['sh', ['-c', `ulimit -n ${opts.fdLimit} && exec ${[process.execPath, CLI, ...args].map(quote).join(' ')}`]];
  const proc = spawn(command, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const c: Child = {
    proc,
    stdout: '',
    stderr: '',
    logs: [],
    exited: new Promise((r) => proc.on('exit', (code) => r(code))),
    waitLog: async (pred, ms = 5000, what = 'log line') => (await waitFor(() => c.logs.find(pred), ms, what))!,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await c.exited;
    },
  };
  let partial = '';
  proc.stdout!.on('data', (d: Buffer) => {
    c.stdout += d.toString();
    partial += d.toString();
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      try {
        c.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (c.stderr += d.toString()));
  return c;
}

const tempDirs = new Set<string>();
let tempDirsHooked = false;

/**
 * A temp dir removed after the test. The removal runs in after-hook order, possibly while a child
 * process the test started later still writes into the dir (hooks run first-in, first-out), so it
 * retries and never throws: a throwing hook would skip the hooks that stop the children, and the
 * test file would never exit. Whatever is left goes when the test process exits.
 */
export async function tempDir(t: TestContext, prefix = 'shaper-'): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  if (!tempDirsHooked) {
    tempDirsHooked = true;
    process.once('exit', () => {
      for (const d of tempDirs) {
        try {
          fs.rmSync(d, { recursive: true, force: true });
        } catch {
          // best effort at exit
        }
      }
    });
  }
  t.after(async () => {
    try {
      await fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
      tempDirs.delete(dir);
    } catch {
      // a child still writing: removed at exit
    }
  });
  return dir;
}

/** Writes `data` on an open echo connection and checks that exactly the same bytes come back. */
export async function echoesExactly(s: net.Socket, data: Buffer): Promise<void> {
  const chunks: Buffer[] = [];
  let got = 0;
  const back = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= data.length) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.once('close', () => reject(new Error(`closed after ${got} of ${data.length} bytes`)));
  });
  s.write(data);
  await back;
  if (sha256(Buffer.concat(chunks)) !== sha256(data)) throw new Error(`echo of ${data.length} bytes came back different (${got} bytes)`);
}

/** Runs the CLI to its end (killed after 20 s); resolves once its exit code and all of its output are in. */
export async function runToEnd(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = runCli(args, env);
  const closed = new Promise((r) => c.proc.once('close', r));
  const timer = setTimeout(() => void c.kill(), 20_000);
  try {
    const code = await c.exited;
    await closed;
    return { code, stdout: c.stdout, stderr: c.stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Hashes what the peer sends and, at its FIN, answers "<sha256> <bytes>\n" (a collect backend on `s`). */
export function answerWithHash(s: net.Socket): void {
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  s.on('data', (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
  });
  s.on('end', () => s.end(`${hash.digest('hex')} ${bytes}\n`));
}
