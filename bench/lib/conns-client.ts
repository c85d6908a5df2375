/**
 * The client side of `conns`: many held connections opened through the proxy, a few of them
 * downloading, and new-connection latency probes. Counters live in typed arrays, so holding ten
 * thousand connections costs the bench little besides the sockets themselves.
 */
import net from 'node:net';

export interface Held {
  sockets: net.Socket[];
  /** bytes received per connection */
  bytes: Float64Array;
  /** connections that closed or failed while held */
  lost: number;
  close(): void;
}

/**
 * Opens `n` connections to `port`, at most `parallel` in flight. With `handshake`, each writes one
 * byte and counts as open once a byte came back (the proxy has dialed its backend by then).
 * Source addresses rotate over 127.0.0.1..127.0.0.`sources` so no one source runs out of ports.
 */
export async function holdConnections(port: number, n: number, opts: { handshake: boolean; parallel: number; sources: number }): Promise<Held> {
  const sockets: net.Socket[] = new Array(n);
  const bytes = new Float64Array(n);
  const held: Held = {
    sockets,
    bytes,
    lost: 0,
    close() {
      for (const s of sockets) s?.destroy();
    },
  };
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${1 + (i % opts.sources)}` });
      sockets[i] = s;
      let open = false;
      s.on('data', (d: Buffer) => {
        bytes[i]! += d.length;
        if (!open && opts.handshake) {
          open = true;
          resolve();
        }
      });
      s.on('error', (err) => {
        if (!open) reject(err);
      });
      s.on('close', () => {
        if (open) held.lost++;
        else reject(new Error(`connection ${i} closed before it was open`));
      });
      s.once('connect', () => {
        if (opts.handshake) s.write('h');
        else {
          open = true;
          resolve();
        }
      });
    });
  const worker = async () => {
    while (next < n) await one(next++);
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.parallel, n) }, worker));
  } catch (err) {
    held.close();
    throw err;
  }
  return held;
}

/** ms from connect() to the first echoed byte of a fresh connection, `count` of them one after another. */
export async function probeLatency(port: number, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      await new Promise<number>((resolve, reject) => {
        const t0 = performance.now();
        const s = net.connect({ port, host: '127.0.0.1' }, () => s.write('p'));
        s.once('data', () => {
          resolve(performance.now() - t0);
          s.destroy();
        });
        s.once('error', reject);
        s.once('close', () => reject(new Error('probe closed before its echo')));
      }),
    );
  }
  return out;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
