/**
 * Bench backends, run as a child process:
 *   node dist/bench/lib/backend.js sink source [--bytes N]
 * listens on a free loopback port per kind and prints {"sink": port, "source": port}.
 *   sink:   reads and discards; on the client's FIN answers "<bytes read>\n" and ends
 *   source: writes N bytes (default: until the client goes away) from one reused buffer, then ends
 *   foo:    answers every Foo "REQ <seq> <data>" line with "ACK <seq> <data>"
 *   echo:   sends back what it reads; ends when the client ends
 *   paced:  like source, but at most --rate bytes/s per connection (one timer for all of them)
 *   pattern: writes --bytes N of lcgBytes(N) (bench/lib/pattern.ts, bytes that differ by position), then ends
 * Exits when its stdin closes (the runner went away).
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { lcgBytes } from './pattern.js';

const CHUNK = 64 * 1024;
const BUF = Buffer.alloc(CHUNK, 0x5a);

const KINDS = ['sink', 'source', 'foo', 'echo', 'paced', 'pattern'] as const;
type Kind = (typeof KINDS)[number];

function echo(socket: net.Socket): void {
  socket.pipe(socket);
}

/** Sockets of the paced kind, topped up every PACE_MS by one shared timer. */
const paced = new Set<net.Socket>();
const PACE_MS = 50;
function startPacing(rate: number): void {
  const perTick = Math.max(1, Math.round((rate * PACE_MS) / 1000));
  const chunk = Buffer.alloc(Math.min(perTick, CHUNK), 0x5a);
  setInterval(() => {
    for (const s of paced) {
      if (s.writableNeedDrain) continue; // the reader is slow: skip this tick rather than buffer
      for (let left = perTick; left > 0; left -= chunk.length) s.write(left >= chunk.length ? chunk : chunk.subarray(0, left));
    }
  }, PACE_MS).unref();
}

function foo(socket: net.Socket): void {
  let carry = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    const text = carry + d;
    const lines = text.split('\n');
    carry = lines.pop()!;
    let out = '';
    for (const line of lines) if (line.startsWith('REQ ')) out += `ACK ${line.slice(4)}\n`;
    if (out) socket.write(out);
  });
  socket.on('end', () => socket.end());
}

function sink(socket: net.Socket): void {
  let bytes = 0;
  socket.on('data', (d: Buffer) => {
    bytes += d.length;
  });
  socket.on('end', () => socket.end(`${bytes}\n`));
}

function source(socket: net.Socket, limit: number): void {
  let sent = 0;
  let gone = false;
  const pump = () => {
    while (!gone && sent < limit) {
      const n = Math.min(CHUNK, limit - sent);
      sent += n;
      if (!socket.write(n === CHUNK ? BUF : BUF.subarray(0, n))) return;
    }
    if (!gone) socket.end();
  };
  socket.on('drain', pump);
  socket.on('close', () => (gone = true));
  socket.on('end', () => socket.end());
  socket.resume(); // discard whatever the client sends
  pump();
}

/** What a pattern backend sends (made once). */
let patterned: Buffer | undefined;

async function listen(kind: Kind, limit: number): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    if (kind === 'sink') sink(socket);
    else if (kind === 'foo') foo(socket);
    else if (kind === 'echo') echo(socket);
    else if (kind === 'paced') {
      paced.add(socket);
      socket.on('close', () => paced.delete(socket));
      socket.on('end', () => socket.end());
      socket.resume();
    } else if (kind === 'pattern') {
      patterned ??= lcgBytes(limit);
      socket.resume(); // discard whatever the client sends
      socket.end(patterned);
    } else source(socket, limit);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { bytes: { type: 'string' }, rate: { type: 'string' } }, allowPositionals: true });
  const limit = values.bytes === undefined ? Infinity : Number(values.bytes);
  if (!(limit >= 0)) throw new Error(`--bytes: "${values.bytes}" is not a byte count`);
  const rate = values.rate === undefined ? 65_536 : Number(values.rate);
  if (!(rate > 0)) throw new Error(`--rate: "${values.rate}" is not a rate in bytes/s`);
  if (positionals.includes('pattern') && limit === Infinity) throw new Error('a pattern backend needs --bytes N');
  const ports: Record<string, number> = {};
  for (const kind of positionals) {
    if (!(KINDS as readonly string[]).includes(kind)) throw new Error(`unknown backend kind "${kind}" (${KINDS.join(', ')})`);
    ports[kind] = await listen(kind as Kind, limit);
    if (kind === 'paced') startPacing(rate);
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

main().catch((err: unknown) => {
  process.stderr.write(`backend: ${(err as Error).message}\n`);
  process.exit(1);
});
