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
import { probeReset } from '../net/probe-reset.js';

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
