/**
 * The native data plane alone, as a bench middle:
 *   node dist/bench/lib/native-relay.js [--pipe-size BYTES] [--cap BYTES_PER_S] [--thread] 127.0.0.1:9001 [...]
 * listens on a free loopback port per target, prints {"ports": [...]}, and hands each accepted
 * connection and its dialed backend to the engine. Unshaped by default; with --cap, each
 * connection's download (backend -> client) is a shaped native flow under the proxy's own
 * Scheduler (src/shaping/scheduler.ts) with a bucket of that rate per connection, as a tier's
 * connection limit would set it. Exits when its stdin closes.
 *
 * --thread (unshaped only): the data-plane-thread design, for comparison: the engine runs on a
 * worker thread's own event loop (libuv's epoll there), the main thread accepts and dials and
 * posts the two descriptors; events come back through the worker's message port (uv_async).
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { takeOver } from '../../src/native/handover.js';
import { realClock } from '../../src/clock.js';
import { NativeEngine } from '../../src/native/engine.js';
import { SchedNode, Scheduler } from '../../src/shaping/scheduler.js';
import { burstFor } from '../../src/shaping/shaper.js';

/** The shaped download, when --cap is given. */
let shaping: { scheduler: Scheduler; cap: number; burst: number } | null = null;
/** The shaped flow's read-ahead, as the JS path's READ_SIZE. */
const SHAPED_LIMIT = 16 * 1024;

/** --thread: the worker running the engine, and the sockets waiting for it to take their descriptors. */
let dataThread: { worker: Worker; waiting: Map<number, net.Socket[]>; seq: number } | null = null;

function handToThread(client: net.Socket, backend: net.Socket): void {
  const t = dataThread!;
  const c = takeOver(client, 'client');
  const b = takeOver(backend, 'backend');
  // Node must not read these again before the worker has its duplicates.
  for (const s of [client, backend]) (s as unknown as { _handle: { readStop(): number } })._handle.readStop();
  const seq = t.seq++;
  t.waiting.set(seq, [client, backend]);
  t.worker.postMessage({ seq, fds: [c.fd, b.fd], up: c.held, down: b.held });
}

function forward(engine: NativeEngine | null, client: net.Socket, host: string, port: number): void {
  const backend = net.connect({ host, port, allowHalfOpen: true, noDelay: true });
  client.setNoDelay(true);
  const fail = () => {
    client.destroy();
    backend.destroy();
  };
  client.on('error', fail);
  backend.on('error', fail);
  backend.once('connect', () => {
    // Node starts reading a dialed socket right after its 'connect' listeners ran: hand over to the
    // thread after that (what it read by then is taken over with it), then stop reading.
    if (!engine) return void setImmediate(() => handToThread(client, backend));
    if (!shaping) {
      const relay = engine.relay(client, backend);
      relay.onDone = () => relay.close();
      return;
    }
    const { scheduler, cap, burst } = shaping;
    const relay = engine.relay(client, backend, { shaped: { down: true }, limit: { down: SHAPED_LIMIT } });
    const node = new SchedNode('conn', relay.down);
    scheduler.attach(node, scheduler.root);
    scheduler.setLimits(node, cap, burst);
    relay.down.onWake = () => scheduler.wake(node);
    relay.onDone = () => {
      scheduler.detach(node);
      relay.close();
    };
    scheduler.wake(node);
  });
}

async function listen(engine: NativeEngine | null, target: string): Promise<number> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  if (!host || !(port > 0)) throw new Error(`"${target}" is not host:port`);
  // pauseOnConnect: Node reads nothing from the client before the handover.
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => forward(engine, c, host, port));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

async function main(): Promise<void> {
  const { values, positionals: targets } = parseArgs({
    options: { 'pipe-size': { type: 'string' }, cap: { type: 'string' }, thread: { type: 'boolean' } },
    allowPositionals: true,
  });
  const cap = Number(values['cap'] ?? 0);
  const pipeSize = Number(values['pipe-size'] ?? 0);
  if (cap > 0) shaping = { scheduler: new Scheduler(realClock, 'global'), cap, burst: burstFor(cap, 50) };
  if (targets.length === 0) throw new Error('usage: native-relay.js [--pipe-size BYTES] [--cap B/S] [--thread] HOST:PORT...');
  let engine: NativeEngine | null = null;
  if (values['thread']) {
    if (cap > 0) throw new Error('--thread relays unshaped only');
    const worker = new Worker(new URL(import.meta.url), { workerData: { pipeSize } });
    const waiting = new Map<number, net.Socket[]>();
    worker.on('message', (m: { ack: number }) => {
      for (const s of waiting.get(m.ack) ?? []) s.destroy();
      waiting.delete(m.ack);
    });
    worker.on('error', (err) => {
      process.stderr.write(`native-relay worker: ${err.message}\n`);
      process.exit(1);
    });
    dataThread = { worker, waiting, seq: 0 };
  } else {
    const opened = NativeEngine.open({ pipeSize });
    if (typeof opened === 'string') throw new Error(opened);
    engine = opened;
  }
  const ports: number[] = [];
  for (const t of targets) ports.push(await listen(engine, t));
  process.stdout.write(`${JSON.stringify({ ports })}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

/** The data-plane thread (--thread): relays the descriptors the main thread posts. */
function worker(): void {
  const engine = NativeEngine.open({ pipeSize: (workerData as { pipeSize: number }).pipeSize });
  if (typeof engine === 'string') throw new Error(engine);
  parentPort!.on('message', (m: { seq: number; fds: [number, number]; up: Uint8Array | null; down: Uint8Array | null }) => {
    const buf = (b: Uint8Array | null) => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : null);
    const relay = engine.relayDescriptors(m.fds[0], m.fds[1], { prepend: { up: buf(m.up), down: buf(m.down) } });
    relay.onDone = () => relay.close();
    parentPort!.postMessage({ ack: m.seq });
  });
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`native-relay: ${(err as Error).message}\n`);
    process.exit(1);
  });
} else worker();
