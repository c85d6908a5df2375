/** Bytes, loopback sockets and the servers a test dials: helper backends and raw servers. */
import crypto from 'node:crypto';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { cleanup } from './base.js';

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

/** What a 'collect' backend answers to `data`. */
export const collected = (data: Buffer): string => `${sha256(data)} ${data.length}\n`;

/** A port that was free a moment ago (for child processes that need a fixed port). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** A connection to 127.0.0.1 from another loopback address (127.0.0.0/8 is all local on Linux). */
export function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Connect (from `localAddress`, when given), say hello and read until closed: a connection refused
 * at accept yields nothing (a reset counts as closed).
 */
export async function refusedRead(port: number, localAddress?: string): Promise<Buffer> {
  try {
    const s = localAddress === undefined ? await connect(port) : await connectFrom(port, localAddress);
    s.write('hello');
    return await readAll(s).finally(() => s.destroy());
  } catch {
    return Buffer.alloc(0);
  }
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

export interface RawServer {
  server: net.Server;
  port: number;
  /** "127.0.0.1:port", as a config's target */
  address: string;
  /** Destroys its open sockets and closes it (again after the test: harmless). */
  close(): Promise<void>;
}

/**
 * A loopback server on a free port whose sockets the test handles itself (`onSocket`); half-open
 * unless `opts` says otherwise, socket errors ignored. Closed after the test, its sockets destroyed.
 */
export async function rawServer(t: TestContext, onSocket: (s: net.Socket) => void, opts: net.ServerOpts = {}): Promise<RawServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true, ...opts }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const close = (): Promise<void> => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  };
  cleanup(t, close);
  return { server, port, address: `127.0.0.1:${port}`, close };
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

export interface BackendOptions {
  /** source: how many bytes it writes */
  sourceBytes?: number;
  /** a fixed port (a backend revived where a dead one was) */
  port?: number;
}

/**
 * A loopback backend on a free port; `close()` stops it.
 *   echo:    sends back what it reads, half-close exact
 *   sink:    reads and counts, ends when the client ends
 *   source:  writes `sourceBytes` then ends its side, keeps reading
 *   collect: reads until the client's FIN, then answers "<sha256> <bytes>\n" and ends
 */
export async function startBackend(kind: BackendKind, opts: BackendOptions = {}): Promise<Backend> {
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

/** A helper backend (startBackend) closed after the test. */
export async function backendFor(t: TestContext, kind: BackendKind, opts: BackendOptions = {}): Promise<Backend> {
  const b = await startBackend(kind, opts);
  cleanup(t, () => b.close());
  return b;
}
