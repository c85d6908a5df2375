/**
 * Many downloading connections in the bench process: each counts what it receives in a typed
 * array (no per-chunk allocation), so the totals of any window can be read at any moment.
 */
import net from 'node:net';
import { sleep } from './scenario.js';

export interface Downloaders {
  bytes: Float64Array;
  sockets: net.Socket[];
  /** Copy of the per-connection counts now. */
  snapshot(): Float64Array;
  close(): void;
}

/**
 * Open `n` connections to `port`, `localAddress` chosen per connection (127.0.0.x makes them
 * different customers), at most `parallel` connects in flight.
 */
export async function openDownloaders(
  port: number,
  n: number,
  localAddress: (i: number) => string = () => '127.0.0.1',
  parallel = 50,
): Promise<Downloaders> {
  const bytes = new Float64Array(n);
  const sockets: net.Socket[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      sockets[i] = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress: localAddress(i) }, () => resolve(s));
        s.once('error', reject);
        s.on('data', (d: Buffer) => {
          bytes[i]! += d.length;
        });
      });
      sockets[i]!.on('error', () => {});
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  return {
    bytes,
    sockets,
    snapshot: () => bytes.slice(),
    close() {
      for (const s of sockets) s?.destroy();
    },
  };
}

export function sum(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s;
}

/** Jain's fairness index: 1 when all equal, 1/n when one takes everything. */
export function jain(xs: ArrayLike<number>): number {
  let s = 0;
  let q = 0;
  for (let i = 0; i < xs.length; i++) {
    s += xs[i]!;
    q += xs[i]! * xs[i]!;
  }
  return q === 0 ? 1 : (s * s) / (xs.length * q);
}

export function diff(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}

/** Sample `fn` every `everyMs` for `ms`, returning [t, value] pairs (t in ms from the start). */
export async function sampleSeries(fn: () => number, ms: number, everyMs: number): Promise<[number, number][]> {
  const out: [number, number][] = [];
  const start = performance.now();
  while (performance.now() - start < ms) {
    out.push([performance.now() - start, fn()]);
    await sleep(everyMs);
  }
  out.push([performance.now() - start, fn()]);
  return out;
}
