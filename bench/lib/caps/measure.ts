/**
 * One caps measurement through the proxy: open the planned connections (bound to their source
 * addresses, paced for connectionRate), download from or upload to the caps backend, and record
 * per-connection histories. Down is counted by the client as it receives; up by the backend's
 * reports ("<bytes> <epoch ms>"), i.e. what passed the proxy's up shaper, not what the kernel buffered.
 */
import net from 'node:net';
import { sleep } from '../scenario.js';
import type { ClientSpec, Dir } from './plan.js';
import { firstSecondBytes, windowRates, type History } from './series.js';

const BUF = Buffer.alloc(64 * 1024, 0x61);
export const now = () => performance.timeOrigin + performance.now();

export interface Run {
  histories: History[];
  firstByteAt: number;
  /** measuring window, epoch ms */
  t0: number;
  t1: number;
  rates: number[];
  firstSecond: number;
}

interface Conn {
  socket: net.Socket;
  history: History;
  bytes: number;
  firstAt: number;
  closed: boolean;
}

function open(host: string, spec: ClientSpec, dir: Dir): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const c: Conn = { socket: undefined as unknown as net.Socket, history: [], bytes: 0, firstAt: NaN, closed: false };
    const s = net.connect({ host, port: spec.port, localAddress: spec.address, noDelay: true }, () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(c);
      if (dir === 'down') {
        s.write('D');
        return;
      }
      s.write('U');
      const pump = () => {
        while (!c.closed && s.write(BUF));
      };
      s.on('drain', pump);
      pump();
    });
    c.socket = s;
    s.once('error', reject);
    s.on('close', () => (c.closed = true));
    if (dir === 'down') {
      s.on('data', (d: Buffer) => {
        if (c.bytes === 0) {
          c.firstAt = now();
          c.history.push([c.firstAt, 0]);
        }
        c.bytes += d.length;
      });
    } else {
      let carry = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        const lines = (carry + d).split('\n');
        carry = lines.pop()!;
        for (const line of lines) {
          const [b, t] = line.split(' ').map(Number) as [number, number];
          if (!c.history.length) {
            c.firstAt = t;
            c.history.push([t, 0]);
          }
          c.history.push([t, b]);
          c.bytes = b;
        }
      });
    }
  });
}

export interface MeasureOptions {
  host: string;
  warmupMs: number;
  windowMs: number;
  paceMs: number;
  /** what to say when a connection is closed or never flows (admission, a dead proxy) */
  explain?: () => string;
}

export async function measure(clients: ClientSpec[], dir: Dir, o: MeasureOptions): Promise<Run> {
  const conns: Conn[] = [];
  const sampler =
    dir === 'down'
      ? setInterval(() => {
          const t = now();
          for (const c of conns) if (c.bytes > 0) c.history.push([t, c.bytes]);
        }, 10)
      : undefined;
  try {
    if (o.paceMs > 0) {
      for (const spec of clients) {
        conns.push(await open(o.host, spec, dir));
        await sleep(o.paceMs);
      }
    } else {
      conns.push(...(await Promise.all(clients.map((spec) => open(o.host, spec, dir)))));
    }
    // Every connection flowing: a refused one (admission) is closed by the proxy.
    const deadline = now() + 10_000;
    while (conns.some((c) => c.bytes === 0)) {
      const closed = conns.findIndex((c) => c.closed);
      if (closed >= 0) {
        throw new Error(`connection ${closed + 1} of ${conns.length} from ${clients[closed]!.address} was closed by the proxy before any byte (admission: maxConnections / connectionRate?)${o.explain?.() ?? ''}`);
      }
      if (now() > deadline) throw new Error(`some of ${conns.length} connections never moved a byte in 10 s${o.explain?.() ?? ''}`);
      await sleep(20);
    }
    const firstByteAt = Math.min(...conns.map((c) => c.firstAt));
    const t0 = Math.max(now() + o.warmupMs, firstByteAt + 1000);
    const t1 = t0 + o.windowMs;
    await sleep(t1 - now() + 40); // the backend's last reports (every 10 ms) cover t1
    if (conns.some((c) => c.closed)) throw new Error(`a connection closed during the measurement${o.explain?.() ?? ''}`);
    const histories = conns.map((c) => c.history);
    if (dir === 'down') {
      const t = now();
      for (const c of conns) c.history.push([t, c.bytes]);
    }
    return { histories, firstByteAt, t0, t1, rates: windowRates(histories, t0, t1), firstSecond: firstSecondBytes(histories, firstByteAt) };
  } finally {
    if (sampler) clearInterval(sampler);
    for (const c of conns) c.socket.destroy();
  }
}
