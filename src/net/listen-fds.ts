/**
 * Listening sockets handed from one process to the next (an upgrade): the old process passes the
 * descriptor of each listening socket to the new one (spawn's stdio, fds 3 and up), and the new one
 * listens on it (`server.listen({ fd })`, public API) instead of binding. Both descriptors name the
 * same kernel socket, so the port never stops listening and its backlog is shared: closing the old
 * process's descriptor afterwards leaves the socket open in the new one.
 *
 * The descriptor of a listening server comes from `server._handle.fd`, a private Node internal
 * (libuv's fd of the TCP handle; Unix only), as src/native/handover.ts reads it for connected
 * sockets. test/net/listen-fds.test.ts pins what we rely on: it is the listening socket's
 * descriptor, and another process that listens on a copy of it serves the port.
 */
import { closeSync } from 'node:fs';
import type { Server } from 'node:net';

/** A listening socket to hand over: which listener it is (`app:<bind>|<port>`, `admin:<host>:<port>`) and its descriptor. */
export interface HandedListener {
  key: string;
  fd: number;
}

type WithHandle = Server & { _handle?: { fd?: unknown } | null };

/** The descriptor of a listening server (private `_handle.fd`), or -1 when it has none. */
export function listeningFd(server: Server): number {
  if (!server.listening) return -1;
  const fd = (server as WithHandle)._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** What a listener asks of the descriptors a process was handed. */
export interface InheritedFds {
  /** The descriptor handed over for this listener, once (undefined: bind as usual). */
  take(key: string): number | undefined;
}

/** The listening descriptors this process was handed at an upgrade, by listener key. */
export class InheritedListeners implements InheritedFds {
  readonly #fds: Map<string, number>;

  constructor(listeners: readonly HandedListener[]) {
    this.#fds = new Map(listeners.map((l) => [l.key, l.fd]));
  }

  take(key: string): number | undefined {
    const fd = this.#fds.get(key);
    this.#fds.delete(key);
    return fd;
  }

  /** Closes the descriptors no listener took (ports the new config no longer has); returns their keys. */
  closeRest(): string[] {
    const keys = [...this.#fds.keys()];
    for (const fd of this.#fds.values()) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.#fds.clear();
    return keys;
  }
}
