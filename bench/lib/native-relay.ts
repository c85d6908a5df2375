/**
 * The native data plane alone, as a bench middle:
 *   node dist/bench/lib/native-relay.js [--pipe-size BYTES] 127.0.0.1:9001 [127.0.0.1:9002 ...]
 * listens on a free loopback port per target, prints {"ports": [...], "engine": "..."}, and hands
 * each accepted connection and its dialed backend to the engine (unshaped). Exits when its stdin
 * closes. No policy, no logging: what it costs is the engine's cost plus an accept and a dial.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { NativeEngine } from '../../src/native/engine.js';

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
    const relay = engine.relay(client, backend);
    relay.onDone = () => relay.close();
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
  const { values, positionals: targets } = parseArgs({ options: { 'pipe-size': { type: 'string' } }, allowPositionals: true });
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
