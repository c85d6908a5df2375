/**
 * The unshaped data path: bytes from one socket written to the other as they come, with
 * backpressure and half-close, like `src.pipe(dst)` but without its nine closures, their context
 * and the listener arrays per direction (about 2 KB a connection, most of what an idle unshaped
 * connection costs besides its sockets). Every listener here is one function shared by all
 * connections; a socket finds the other end through one property.
 *
 * Errors and 'close' are not handled here: the connection's close path owns them.
 */
import type { Socket } from 'node:net';

const kPeer = Symbol('shaper.peer');

/** A socket with the other end of its connection attached. */
type Linked = Socket & { [kPeer]?: Socket };

/** Link `a` and `b` as the two ends of one connection (both pumps, or a pump and a flow, share it). */
function link(a: Socket, b: Socket): void {
  (a as Linked)[kPeer] = b;
  (b as Linked)[kPeer] = a;
}

/**
 * Copy `src` to `dst`: each chunk written as it arrives (never copied or changed), `src` paused
 * while `dst` is full and resumed on its 'drain', `dst` ended after `src`'s FIN (once `dst` has
 * written everything before it). `src` starts flowing when it is resumed (or at once, if it never
 * was paused).
 */
export function pump(src: Socket, dst: Socket): void {
  link(src, dst);
  src.on('data', onData);
  src.on('end', onEnd);
  dst.on('drain', onDrain);
}

function onData(this: Linked, chunk: Buffer): void {
  if (!this[kPeer]!.write(chunk)) this.pause();
}

/** `this` can take more: the socket that writes into it may read again. */
function onDrain(this: Linked): void {
  const src = this[kPeer];
  if (src && src.isPaused() && !src.destroyed) src.resume();
}

function onEnd(this: Linked): void {
  probeReset(this);
  const dst = this[kPeer]!;
  if (!dst.destroyed) dst.end();
}

const EMPTY = Buffer.alloc(0);

/**
 * A peer's FIN, or its RST in disguise? libuv reports a reset as a clean EOF when it arrives while
 * the socket is not reading (paused by backpressure, i.e. on a loaded machine) and there is still
 * data queued: the last read drains the queue, POLLHUP is set, and libuv ends the stream without
 * the read that would return ECONNRESET. The connection then looked half-closed forever (a
 * truncated stream passed on as complete, backend_error/client_error never counted). An empty
 * write sends nothing on a live half-closed socket, and on a reset one fails with ECONNRESET or
 * EPIPE, which the socket's 'error' handler turns into the right close. Plain TCP only (a TLS
 * socket would write a record), and only while our side may still write.
 */
export function probeReset(socket: Socket): void {
  if (socket.destroyed || socket.writableEnded || 'encrypted' in socket) return;
  socket.write(EMPTY);
}
