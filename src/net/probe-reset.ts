/**
 * A socket helper with no policy, shared by the unshaped pump (server/pump.ts) and the shaping
 * socket flow (shaping/socket-flow.ts), which sit on different layers.
 */
import type { Socket } from 'node:net';

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
