/**
 * The caps bench's backend, run as a child process:  node dist/bench/lib/caps/backend.js [--port N]
 * One loopback listener that is a source, a sink or an echo, chosen by the client's first byte
 * (so every app of a rewritten config can point at this one target):
 *   'D' (down):  writes from one reused 64 KiB buffer until the client goes away
 *   'U' (up):    reads and discards; reports "<bytes> <epoch ms>\n" back on the first byte and then
 *                every 10 ms while the count changes (epoch ms = performance.timeOrigin + now(),
 *                comparable across processes), so the client sees what passed the proxy's up shaper
 *   'E' (echo):  echoes everything back
 * Prints {"port": N} and exits when its stdin closes (the runner went away).
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const BUF = Buffer.alloc(64 * 1024, 0x5a);
const now = () => performance.timeOrigin + performance.now();

interface Counted {
  socket: net.Socket;
  bytes: number;
  reported: number;
}
const counted = new Set<Counted>();

function report(c: Counted): void {
  c.reported = c.bytes;
  c.socket.write(`${c.bytes} ${now().toFixed(3)}\n`);
}

setInterval(() => {
  for (const c of counted) if (c.bytes !== c.reported && c.socket.writable) report(c);
}, 10).unref();

function down(socket: net.Socket): void {
  let gone = false;
  const pump = () => {
    while (!gone && socket.write(BUF));
  };
  socket.on('drain', pump);
  socket.on('close', () => (gone = true));
  socket.resume();
  pump();
}

function up(socket: net.Socket, first: Buffer): void {
  const c: Counted = { socket, bytes: first.length, reported: 0 };
  counted.add(c);
  if (c.bytes > 0) report(c);
  socket.on('data', (d: Buffer) => {
    const fresh = c.bytes === 0;
    c.bytes += d.length;
    if (fresh) report(c);
  });
  socket.on('close', () => counted.delete(c));
}

function serve(socket: net.Socket): void {
  socket.on('error', () => socket.destroy());
  socket.on('end', () => socket.end());
  socket.once('data', (d: Buffer) => {
    const mode = String.fromCharCode(d[0]!);
    const rest = d.subarray(1);
    if (mode === 'D') down(socket);
    else if (mode === 'U') up(socket, rest);
    else if (mode === 'E') {
      if (rest.length) socket.write(rest);
      socket.on('data', (x: Buffer) => socket.write(x));
    } else socket.destroy();
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, serve);
  await new Promise<void>((r) => server.listen(Number(values.port), '127.0.0.1', () => r()));
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

main().catch((err: unknown) => {
  process.stderr.write(`caps backend: ${(err as Error).message}\n`);
  process.exit(1);
});
