/**
 * A connection's bytes on the native data plane (src/native/): both sockets handed to the splice
 * relay after the dial, TypeScript keeping the decisions (shaping grants through the scheduler,
 * the close path, the counts). Which connections go there: plain TCP on both sides, unless the app
 * or the config says `dataPlane: "js"` (TLS termination or origination and Foo analysis need the
 * bytes in JavaScript).
 */
import type { Socket } from 'node:net';
import type { AppConfig } from '../config/types.js';
import type { NativeRelay, RelayFailure } from '../native/relay.js';
import type { Flow } from '../shaping/flow.js';
import type { SchedNode } from '../shaping/scheduler.js';
import type { Dir } from '../shaping/scope.js';
import type { CloseReason } from './stages.js';
import type { NativePort, ShapingPort } from './connection-deps.js';

export type { NativePort };
import type { ShapedConnection } from '../shaping/shaper.js';

/**
 * The pipe (the queue, so the read-ahead) of a shaped native direction: 64 KiB. The relay polls its
 * source only while the pipe is empty and otherwise tops it up after a grant once half is gone, and grants
 * come in up to a bucket at a time, woken in shared windows (grants.ts EARLY_FRACTION): per second
 * a 64 KiB/s connection then costs about two writes and two reads, no more system calls than
 * nginx's own rate limit, no epoll_ctl, and few event-loop wake-ups.
 */
export const SHAPED_PIPE = 64 * 1024;

/**
 * The pipe of an unshaped native direction while it moves bytes: 256 KiB, four times the kernel's
 * default, so one splice(2) moves up to 256 KiB instead of 64 KiB. `npm run bench -- peers
 * --scenarios 4` (iperf3, one stream), two alternating rounds against nginx: 64 KiB gave 11.84 and
 * 10.86 Gbit/s at 0.480 and 0.550 CPU-s per GB; 256 KiB 14.12 and 14.07 at 0.357 and 0.363 (nginx
 * 7.93-8.66 Gbit/s, 0.92-1.00 CPU-s per GB). 1 MiB was a little cheaper still (0.26-0.29) but
 * 64 pooled pipes of it would take the whole per-user pipe budget (pipe-user-pages-soft, 64 MiB);
 * past that the kernel refuses the size and the pipe keeps its default, which still works.
 */
export const UNSHAPED_PIPE = 256 * 1024;

/** Whether a connection of `app` goes native (the engine is there: `native` is defined). */
export function goesNative(native: NativePort | undefined, app: AppConfig, analysed: boolean): boolean {
  if (!native) return false;
  if ((app.dataPlane ?? native.plane) === 'js') return false;
  return !app.tls && !app.targetTls && !analysed;
}

/**
 * A native direction as the scheduler's flow, timing how long its bytes wait for grants (the
 * shaping delay the JS flows measure from their queues): from a wake with bytes sendable to the
 * pass that leaves nothing sendable. One clock read per such pass, none per byte.
 */
export class TimedFlow implements Flow {
  /** ms bytes waited for grants, in total */
  waitedMs = 0;
  #since = -1;

  constructor(
    readonly flow: Flow,
    /** grants the relay would rather get at once: its read-ahead (the shaped pipe) */
    readonly grantSize: number,
  ) {}

  sendable(): number {
    return this.flow.sendable();
  }

  pass(n: number): void {
    this.flow.pass(n);
    if (this.#since >= 0 && this.flow.sendable() === 0) {
      this.waitedMs += performance.now() - this.#since;
      this.#since = -1;
    }
  }

  /** Bytes became sendable (the engine's wake): the wait starts, if it was not already on. */
  woke(): void {
    if (this.#since < 0 && this.flow.sendable() > 0) this.#since = performance.now();
  }
}

/** What the link needs of the shaper for a shaped connection. */
export interface ShapedLink {
  sc: ShapedConnection;
  shaping: Pick<ShapingPort, 'attachFlows' | 'detach'>;
  label: string;
}

/** One connection's relay, its counts carried on from what the sockets had done before the hand-over. */
export class NativeLink {
  nodes: Record<Dir, SchedNode> | null = null;
  /** the shaped directions as the scheduler sees them (null: unshaped) */
  timed: Record<Dir, TimedFlow> | null = null;
  #shaping: ShapedLink['shaping'] | null = null;

  /**
   * Hands `client` and `backend` to the engine (`preamble`: written to the backend first); a shaped
   * connection's directions hang under its customer in the scheduler. `done` gets the close reason
   * when the relay lets go of its sockets. An Error when the engine refuses them (nothing changed).
   */
  static open(
    native: NativePort,
    client: Socket,
    backend: Socket,
    preamble: Buffer | undefined,
    shaped: ShapedLink | null,
    on: { done(reason: CloseReason, err?: Error): void; firstBytes: { up: (() => void) | null; down: (() => void) | null } },
  ): NativeLink | Error {
    const counts = { bytesRead: client.bytesRead, bytesWritten: client.bytesWritten, readableLength: client.readableLength };
    let relay: NativeRelay;
    try {
      relay = native.relay(client, backend, { prepend: { up: preamble ?? null }, shaped: { up: shaped !== null, down: shaped !== null } });
    } catch (err) {
      return err as Error;
    }
    const link = new NativeLink(relay, counts, preamble?.length ?? 0);
    relay.onDone = (failure) => {
      const { reason, code } = closeReasonOf(failure);
      on.done(reason, code ? Object.assign(new Error(code), { code }) : undefined);
    };
    const { up, down } = on.firstBytes;
    if (up || down) relay.onFirstBytes = (dir) => (dir === 1 ? down?.() : up?.());
    if (shaped) {
      const timed = { up: new TimedFlow(relay.up, SHAPED_PIPE), down: new TimedFlow(relay.down, SHAPED_PIPE) };
      const { nodes, wake } = shaped.shaping.attachFlows(shaped.sc, shaped.label, timed);
      link.nodes = nodes;
      link.timed = timed;
      link.#shaping = shaped.shaping;
      relay.up.onWake = () => {
        timed.up.woke();
        wake.up();
      };
      relay.down.onWake = () => {
        timed.down.woke();
        wake.down();
      };
    }
    return link;
  }

  /**
   * The connection closed: out of the scheduler, and the relay lets go (as destroy() would). Grants
   * still waiting for the engine's commit are moved first: the scheduler counted them as passed (a
   * tier's bytes, a customer's usage), so a close right after a serve pass (a quota's) must not
   * drop them.
   */
  close(): void {
    if (this.nodes) {
      this.#shaping?.detach(this.nodes);
      this.relay.commit();
    }
    this.relay.close();
  }
  readonly #upBase: number;
  readonly #downBase: number;

  /**
   * `client` and `backend` as they are just before the hand-over: bytes the client stream read
   * (some still buffered: they are handed over and counted again as moved), bytes written to the
   * client; `preamble`: bytes prepended to the backend that are not the client's (a PROXY header).
   */
  constructor(
    readonly relay: NativeRelay,
    client: { bytesRead: number; bytesWritten: number; readableLength: number },
    preamble: number,
  ) {
    this.#upBase = client.bytesRead - client.readableLength - preamble;
    this.#downBase = client.bytesWritten;
  }

  /** Bytes the client sent (as a socket's bytesRead would count them). */
  get bytesUp(): number {
    return this.#upBase + this.relay.bytesUp;
  }

  /** Bytes written to the client. */
  get bytesDown(): number {
    return this.#downBase + this.relay.bytesDown;
  }

  /** ms the shaped directions' bytes waited for grants, both ways (undefined: unshaped). */
  get waitedMs(): number | undefined {
    return this.timed ? this.timed.up.waitedMs + this.timed.down.waitedMs : undefined;
  }
}

/** The close reason (and error code) of a relay that let go of its sockets. */
export function closeReasonOf(failure: RelayFailure | null): { reason: CloseReason; code?: string } {
  if (!failure) return { reason: 'done' };
  const { side, code } = failure;
  if (code === 'EMFILE' || code === 'ENFILE') return { reason: 'resource_exhausted', code };
  if (side === 'engine') return { reason: 'stage_error', code };
  // EPIPE: the peer closed in order and refused what was still on its way (as on the JS path).
  if (code === 'EPIPE') return { reason: side === 'client' ? 'client_closed' : 'backend_closed' };
  return { reason: side === 'client' ? 'client_error' : 'backend_error', code };
}
