/**
 * Taking a connected socket away from Node for the native data plane.
 *
 * The descriptor comes from `socket._handle.fd`, a private Node internal (libuv's fd of a TCP
 * handle; Unix only). test/native/handover.test.ts pins what we rely on: it is the socket's
 * descriptor while the socket is open. The engine works on its own dup() of it, so destroying
 * the JavaScript socket afterwards only drops Node's reference: the connection stays open and
 * nothing is sent (the FIN or RST goes out when the last descriptor closes, which is then the
 * engine's).
 */
import type { Socket } from 'node:net';
import { NativeError } from './error.js';

type WithHandle = Socket & { _handle?: { fd?: unknown } | null };

/** The socket's descriptor (private `_handle.fd`), or -1 when it has none. */
export function socketFd(socket: Socket): number {
  const fd = (socket as WithHandle)._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** Why `socket` cannot be handed over, or null when it can. */
export function handoverProblem(socket: Socket): string | null {
  if ('encrypted' in socket) return 'a TLS socket needs its bytes in JavaScript';
  if (socket.destroyed) return 'the socket is destroyed';
  if (socket.connecting) return 'the socket is still connecting';
  if (socket.writableLength > 0) return `${socket.writableLength} written bytes are not flushed yet (hand them over as prepended bytes instead)`;
  if (socketFd(socket) < 0) return 'the socket has no descriptor (_handle.fd)';
  return null;
}

/**
 * Takes what the socket's stream already read (bytes the native relay must write first) and its
 * descriptor. Call synchronously before the relay starts: between this and the engine's dup()
 * Node must not read from the socket again.
 */
export function takeOver(socket: Socket, role: string): { fd: number; held: Buffer | null } {
  const problem = handoverProblem(socket);
  if (problem) throw new NativeError(`cannot hand the ${role} socket to the native data plane: ${problem}`);
  let held: Buffer | null = null;
  if (socket.readableLength > 0) {
    const chunk: unknown = socket.read();
    if (Buffer.isBuffer(chunk)) held = chunk;
    else if (typeof chunk === 'string') throw new NativeError(`the ${role} socket has an encoding set; hand over raw sockets only`);
  }
  return { fd: socketFd(socket), held };
}
