/**
 * Real sockets around one native relay:  client  ->  front (accepts, dials, hands over)  ->  server.
 * `client` and `server` are the test's two ends; the relay sits between the front's accepted
 * socket and its dialed one. Everything started is stopped by the test's cleanup.
 */
import net from 'node:net';
import fs from 'node:fs';
import type { TestContext } from 'node:test';
import { NativeEngine, type RelayOptions } from '../../src/native/engine.js';
import type { NativeRelay } from '../../src/native/relay.js';

const opened = NativeEngine.open();
/** The engine, or why the native tests skip. */
export const engine: NativeEngine | null = typeof opened === 'string' ? null : opened;
export const skip: string | false = typeof opened === 'string' ? `${opened} (build it with npm run build:native)` : false;

export interface Relayed {
  client: net.Socket;
  server: net.Socket;
  relay: NativeRelay;
  /** Resolves with the relay's failure (null: clean) when the engine let go of the sockets. */
  done: Promise<NativeRelay['failure']>;
}

export interface Listening {
  server: net.Server;
  port: number;
  sockets: Set<net.Socket>;
}

export async function listen(t: TestContext, onSocket: (s: net.Socket) => void = () => {}): Promise<Listening> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { server, port: (server.address() as net.AddressInfo).port, sockets };
}

/**
 * A relayed connection. `beforeHandover` runs with the front's two sockets (to let bytes
 * arrive in their stream buffers, say) before they are handed to the engine.
 */
export async function relayed(
  t: TestContext,
  o: RelayOptions = {},
  beforeHandover?: (accepted: net.Socket, dialed: net.Socket, client: net.Socket) => Promise<void>,
): Promise<Relayed> {
  const eng = engine!;
  let serverSide: ((s: net.Socket) => void) | undefined;
  const serverReady = new Promise<net.Socket>((r) => (serverSide = r));
  const backend = await listen(t, (s) => serverSide!(s));
  let handed: ((v: { relay: NativeRelay; done: Promise<NativeRelay['failure']> }) => void) | undefined;
  let failed: ((e: unknown) => void) | undefined;
  const relayReady = new Promise<{ relay: NativeRelay; done: Promise<NativeRelay['failure']> }>((res, rej) => {
    handed = res;
    failed = rej;
  });
  let clientRef: net.Socket | undefined;
  const front = await listen(t, (accepted) => {
    const dialed = net.connect({ port: backend.port, host: '127.0.0.1', allowHalfOpen: true }, () => {
      void (async () => {
        try {
          if (beforeHandover) await beforeHandover(accepted, dialed, clientRef!);
          const relay = eng.relay(accepted, dialed, o);
          const done = new Promise<NativeRelay['failure']>((r) => (relay.onDone = r));
          t.after(() => relay.close(true));
          handed!({ relay, done });
        } catch (err) {
          failed!(err);
        }
      })();
    });
    dialed.on('error', (err) => failed!(err));
  });
  const client = net.connect({ port: front.port, host: '127.0.0.1', allowHalfOpen: true });
  clientRef = client;
  t.after(() => client.destroy());
  const [server, { relay, done }] = await Promise.all([serverReady, relayReady]);
  t.after(() => server.destroy());
  // A test that expects an error listens for it itself; the rest must not die of a late reset.
  client.on('error', () => {});
  server.on('error', () => {});
  return { client, server, relay, done };
}

/**
 * Writes from `writer` until the relay's direction toward a reader that does not read finds its
 * destination full (the reader's kernel buffers and the pipe hold bytes). Returns the bytes written.
 */
export async function fillUntilFull(writer: net.Socket, isFull: () => boolean): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 7);
  let written = 0;
  while (!isFull()) {
    written += chunk.length;
    if (!writer.write(chunk)) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return written;
}

/** Everything `s` sends until its FIN. */
export function readToEnd(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
    s.resume();
  });
}

/** Resolves when `s` has received `n` bytes (collected), rejects on end/error before that. */
export function readBytes(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onEnd = () => fail(new Error(`end after ${got} of ${n} bytes`));
    const off = () => {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', fail);
    };
    const fail = (err: Error) => {
      off();
      reject(err);
    };
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        off();
        s.pause();
        resolve(Buffer.concat(chunks));
      }
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', fail);
    s.resume();
  });
}

/** The error `s` fails with (its 'error' event), or null if it closes without one. */
export function closeError(s: net.Socket): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    let err: NodeJS.ErrnoException | null = null;
    s.on('error', (e) => (err = e));
    s.on('close', () => resolve(err));
    s.resume();
  });
}

/** Descriptors this process has open, by kind ('socket', 'pipe', 'anon_inode', ...). */
export function openFds(kind?: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    if (!kind) n++;
    else {
      try {
        if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${kind}:`)) n++;
      } catch {
        // closed meanwhile (the readdir's own descriptor)
      }
    }
  }
  return n;
}

/** One turn of the event loop and the close callbacks after it. */
export function turn(): Promise<void> {
  return new Promise((r) => setImmediate(() => setImmediate(r)));
}
