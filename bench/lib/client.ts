/**
 * The measuring client: pushes or pulls bytes as fast as it can over N connections for a fixed
 * time. Nothing per chunk but a counter: uploads write one shared 64 KiB buffer over and over,
 * downloads read into one reused buffer (`onread`), so no chunk is allocated or copied here.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

const CHUNK = 64 * 1024;
const SEND = Buffer.alloc(CHUNK, 0xa5);
const RECV = Buffer.allocUnsafe(CHUNK);

export interface Measurement {
  /** Bytes that made it end to end in the window. */
  bytes: number;
  seconds: number;
  bytesPerSecond: number;
  /** CPU seconds the client (this process) used meanwhile. */
  clientCpuSeconds: number;
}

function connect(port: number, opts: Partial<net.NetConnectOpts> = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true, ...opts } as net.NetConnectOpts, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Rejects after `ms`, so a stuck run fails the bench instead of hanging it. */
function deadline(ms: number, what: string): { promise: Promise<never>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Upload to a sink: write for `ms`, half-close, and wait for the sink to answer with the byte
 * count it read. Throughput is the bytes the sink confirms over the time until it confirmed them,
 * so data still buffered on the way counts only once it arrives. Also checks that the sink got
 * every byte written.
 */
export async function upload(port: number, connections: number, ms: number): Promise<Measurement> {
  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(port)));
  const guard = deadline(ms + 30_000, `upload to port ${port}`);
  try {
    let stopped = false;
    const cpu0 = cpuNow();
    const t0 = performance.now();
    const timer = setTimeout(() => (stopped = true), ms);
    const counts = sockets.map(
      (s) =>
        new Promise<number>((resolve, reject) => {
          let reply = '';
          s.setEncoding('utf8');
          s.on('data', (d: string) => (reply += d));
          s.on('end', () => resolve(Number(reply.trim())));
          s.on('error', reject);
          s.on('close', () => reject(new Error(`connection closed before the sink answered (got "${reply}")`)));
          const pump = () => {
            while (!stopped) if (!s.write(SEND)) return;
            s.off('drain', pump);
            s.end();
          };
          s.on('drain', pump);
          pump();
        }),
    );
    const received = await Promise.race([Promise.all(counts), guard.promise]);
    const seconds = (performance.now() - t0) / 1000;
    clearTimeout(timer);
    const written = sockets.reduce((n, s) => n + s.bytesWritten, 0);
    const bytes = received.reduce((a, b) => a + b, 0);
    if (bytes !== written) throw new Error(`upload lost data: wrote ${written} bytes, the sink read ${bytes}`);
    return { bytes, seconds, bytesPerSecond: bytes / seconds, clientCpuSeconds: cpuNow() - cpu0 };
  } finally {
    guard.cancel();
    for (const s of sockets) s.destroy();
  }
}

/**
 * Download from a source that writes until the client goes away: count what arrives in a window
 * of `ms` that starts once every connection is up, then close.
 */
export async function download(port: number, connections: number, ms: number): Promise<Measurement> {
  let total = 0;
  let failure: Error | undefined;
  const onread = {
    buffer: RECV, // shared: the callback runs synchronously and only counts
    callback: (n: number) => {
      total += n;
      return true;
    },
  };
  const sockets = await Promise.all(Array.from({ length: connections }, () => connect(port, { onread })));
  try {
    for (const s of sockets) {
      s.on('error', (err) => (failure ??= err));
      s.on('end', () => (failure ??= new Error('the source ended the connection during the run')));
    }
    const cpu0 = cpuNow();
    const b0 = total;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    const bytes = total - b0;
    const seconds = (performance.now() - t0) / 1000;
    if (failure) throw failure;
    return { bytes, seconds, bytesPerSecond: bytes / seconds, clientCpuSeconds: cpuNow() - cpu0 };
  } finally {
    for (const s of sockets) s.destroy();
  }
}
