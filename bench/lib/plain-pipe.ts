/**
 * The baseline a user would write instead of the proxy, run as a child process:
 *   node dist/bench/lib/plain-pipe.js [--no-delay] 127.0.0.1:9001 [127.0.0.1:9002 ...]
 * listens on a free loopback port per target, prints {"ports": [...]} in the same order, and for
 * each connection dials the target and pipes both ways. `--no-delay` sets TCP_NODELAY on both
 * sockets, as the proxy does. Exits when its stdin closes.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

let noDelay = false;

function forward(client: net.Socket, host: string, port: number): void {
  const backend = net.connect({ host, port, allowHalfOpen: true, noDelay });
  client.setNoDelay(noDelay);
  const teardown = () => {
    client.destroy();
    backend.destroy();
  };
  client.on('error', teardown);
  backend.on('error', teardown);
  client.on('close', () => backend.destroy());
  backend.on('close', () => client.destroy());
  client.pipe(backend);
  backend.pipe(client);
}

async function listen(target: string): Promise<number> {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  if (!host || !(port > 0)) throw new Error(`"${target}" is not host:port`);
  const server = net.createServer({ allowHalfOpen: true }, (client) => forward(client, host, port));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

async function main(): Promise<void> {
  const { values, positionals: targets } = parseArgs({ options: { 'no-delay': { type: 'boolean' } }, allowPositionals: true });
  noDelay = values['no-delay'] ?? false;
  if (targets.length === 0) throw new Error('usage: plain-pipe.js [--no-delay] HOST:PORT...');
  const ports: number[] = [];
  for (const t of targets) ports.push(await listen(t));
  process.stdout.write(`${JSON.stringify({ ports })}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

main().catch((err: unknown) => {
  process.stderr.write(`plain-pipe: ${(err as Error).message}\n`);
  process.exit(1);
});
