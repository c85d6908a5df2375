/**
 * The native data plane alone, as a bench middle:
 *   node dist/bench/lib/native-relay.js [--pipe-size BYTES] [--cap BYTES_PER_S] 127.0.0.1:9001 [...]
 * listens on a free loopback port per target, prints {"ports": [...]}, and hands each accepted
 * connection and its dialed backend to the engine. Unshaped by default; with --cap, each
 * connection's download (backend -> client) is a shaped native flow under the proxy's own
 * Scheduler (src/shaping/scheduler.ts) with a bucket of that rate per connection, as a tier's
 * connection limit would set it. Exits when its stdin closes.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { realClock } from '../../src/clock.js';
import { NativeEngine } from '../../src/native/engine.js';
import { SchedNode, Scheduler } from '../../src/shaping/scheduler.js';
import { burstFor } from '../../src/shaping/shaper.js';

/** The shaped download, when --cap is given. */
let shaping: { scheduler: Scheduler; cap: number; burst: number } | null = null;
/** The shaped flow's read-ahead, as the JS path's READ_SIZE. */
const SHAPED_LIMIT = 16 * 1024;

function forward(engine: NativeEngine, client: net.Socket, host: string, port: number): void {
  const backend = net.connect({ host, port, allowHalfOpen: true, noDelay: true });
  client.setNoDelay(true);
  const fail = () => {
    client.destroy();
    backend.destroy();
  };
  client.on('error', fail);
  backend.on('error', fail);
  backend.once('connect', () => {
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

async function listen(engine: NativeEngine, target: string): Promise<number> {
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
  const { values, positionals: targets } = parseArgs({ options: { 'pipe-size': { type: 'string' }, cap: { type: 'string' } }, allowPositionals: true });
  const cap = Number(values['cap'] ?? 0);
  if (cap > 0) shaping = { scheduler: new Scheduler(realClock, 'global'), cap, burst: burstFor(cap, 50) };
  if (targets.length === 0) throw new Error('usage: native-relay.js [--pipe-size BYTES] HOST:PORT...');
  const engine = NativeEngine.open({ pipeSize: Number(values['pipe-size'] ?? 0) });
  if (typeof engine === 'string') throw new Error(engine);
  const ports: number[] = [];
  for (const t of targets) ports.push(await listen(engine, t));
  process.stdout.write(`${JSON.stringify({ ports })}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

main().catch((err: unknown) => {
  process.stderr.write(`native-relay: ${(err as Error).message}\n`);
  process.exit(1);
});
