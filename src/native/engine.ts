/**
 * The native data plane as the control plane uses it: hand over two connected sockets, get a
 * NativeRelay whose directions are scheduler flows; events come back in one batch per event-loop
 * iteration. One engine per process (per worker).
 *
 *   const engine = NativeEngine.open();           // or a string: why it is unavailable
 *   const relay = engine.relay(client, backend, { prepend: { up: header } });
 *   relay.onDone = (failure) => log(relay.bytesUp, relay.bytesDown, failure);
 */
import type { Socket } from 'node:net';
import { NativeError } from './error.js';
import { takeOver } from './handover.js';
import { E_DATA0, E_DATA1, E_DONE, E_FIN0, E_FIN1, E_FIRST0, E_FIRST1, H_ALLOCS, H_PIPE_SIZE, H_PIPES, H_POOLED, H_RELAYS, H_SHAPED_PIPE_SIZE, H_SLOTS, H_SOCKETS, SLOT } from './layout.js';
import { loadNative, type NativeAddon } from './load.js';
import { NativeRelay, type Shared } from './relay.js';

export interface EngineOptions {
  /** Relays open at once, at most (128 bytes of shared memory each, touched only when used). */
  maxRelays?: number;
  /** Pipe capacity of unshaped directions in bytes (F_SETPIPE_SZ, rounded up to pages); 0: the kernel's 64 KiB. */
  pipeSize?: number;
  /**
   * Pipe capacity of shaped directions: their queue, so it bounds their read-ahead. Small pipes
   * keep thousands of waiting shaped connections within the per-user pipe limit
   * (/proc/sys/fs/pipe-user-pages-soft: 64 MiB of pipes for a user without CAP_SYS_RESOURCE).
   */
  shapedPipeSize?: number;
  /** Empty pipes kept for reuse, per kind (unshaped, shaped). */
  maxPooled?: number;
}

export interface RelayOptions {
  /** Bytes JavaScript already holds, written before anything else: up to the backend, down to the client. */
  prepend?: { up?: Buffer | null; down?: Buffer | null };
  /** Shaped directions move only granted bytes (NativeFlow.pass). Default: unshaped. */
  shaped?: { up?: boolean; down?: boolean };
  /** Read-ahead bound per direction in bytes (0: the pipe's capacity). */
  limit?: { up?: number; down?: number };
}

export interface EngineStats {
  /** Relays holding sockets. */
  relays: number;
  /** Relays not yet closed by JavaScript (finished ones included). */
  slots: number;
  sockets: number;
  pipes: number;
  pooled: number;
  /** Descriptors the engine holds: sockets + two per pipe, in use or pooled. */
  descriptors: number;
  /** Native allocations alive (relay structures, prepended buffers): 0 once everything closed. */
  allocations: number;
  pipeSize: number;
  shapedPipeSize: number;
}

const DEFAULTS = { maxRelays: 65536, pipeSize: 0, shapedPipeSize: 16 * 1024, maxPooled: 64 };

let current: NativeEngine | null = null;

export class NativeEngine {
  readonly #sh: Shared;
  readonly #relays: (NativeRelay | undefined)[] = [];
  readonly #batch: number;
  #closed = false;

  private constructor(addon: NativeAddon, options: Required<EngineOptions>) {
    const { state, ints } = addon.open(options, (count) => this.#onEvents(count));
    const sh: Shared = { addon, state: new Float64Array(state), ints: new Int32Array(ints), header: options.maxRelays * SLOT };
    this.#sh = sh;
    this.#batch = 2 * options.maxRelays;
  }

  /** The process's engine (opened on first use), or why the native data plane is unavailable. */
  static open(options: EngineOptions = {}): NativeEngine | string {
    if (current) return current;
    const loaded = loadNative();
    if (!loaded.addon) return `native data plane unavailable: ${loaded.reason}`;
    current = new NativeEngine(loaded.addon, { ...DEFAULTS, ...options });
    return current;
  }

  /**
   * Relays `client` <-> `backend` natively from now on. Both must be connected plain TCP sockets
   * with nothing left to write and no 'data' listeners; what their streams already read is
   * written first (after `prepend`). The JavaScript sockets are destroyed (nothing is sent: the
   * engine holds its own descriptors); the owner should ignore their 'close'.
   */
  relay(client: Socket, backend: Socket, o: RelayOptions = {}): NativeRelay {
    if (this.#closed) throw new NativeError('the native engine is closed');
    const c = takeOver(client, 'client');
    const b = takeOver(backend, 'backend');
    const relay = this.relayDescriptors(c.fd, b.fd, {
      ...o,
      prepend: { up: join(o.prepend?.up, c.held), down: join(o.prepend?.down, b.held) },
    });
    client.destroy();
    backend.destroy();
    return relay;
  }

  /**
   * Relays two connected descriptors (the engine works on duplicates: the caller's stay its own,
   * and the caller closes them when it likes, which sends nothing). For sockets that another
   * thread accepted: see bench/lib/native-relay.ts --thread.
   */
  relayDescriptors(clientFd: number, backendFd: number, o: RelayOptions = {}): NativeRelay {
    if (this.#closed) throw new NativeError('the native engine is closed');
    const bits = (o.shaped?.up ? 1 : 0) | (o.shaped?.down ? 2 : 0);
    let id: number;
    try {
      id = this.#sh.addon.relay(clientFd, backendFd, o.prepend?.up ?? null, o.prepend?.down ?? null, bits, o.limit?.up ?? 0, o.limit?.down ?? 0);
    } catch (err) {
      throw new NativeError(`the native relay could not start: ${(err as Error).message}`, { cause: err });
    }
    const relay = new NativeRelay(this.#sh, id, (r) => {
      if (this.#relays[r.id] === r) this.#relays[r.id] = undefined;
    });
    this.#relays[id] = relay;
    return relay;
  }

  /** Moves every grant made since the last commit now (the engine also does before the loop waits). */
  commit(): void {
    this.#sh.addon.commit();
  }

  stats(): EngineStats {
    const s = this.#sh.state;
    const h = this.#sh.header;
    const sockets = s[h + H_SOCKETS]!;
    const pipes = s[h + H_PIPES]!;
    const pooled = s[h + H_POOLED]!;
    return {
      relays: s[h + H_RELAYS]!,
      slots: s[h + H_SLOTS]!,
      sockets,
      pipes,
      pooled,
      descriptors: sockets + 2 * (pipes + pooled),
      allocations: s[h + H_ALLOCS]!,
      pipeSize: s[h + H_PIPE_SIZE]!,
      shapedPipeSize: s[h + H_SHAPED_PIPE_SIZE]!,
    };
  }

  /** Closes every relay (plain close) and the engine; NativeEngine.open() makes a new one. */
  close(): void {
    if (this.#closed) return;
    for (const r of this.#relays) r?.close();
    this.#closed = true;
    this.#sh.addon.close();
    if (current === this) current = null;
  }

  #onEvents(count: number): void {
    const ints = this.#sh.ints;
    const base = this.#batch;
    for (let k = 0; k < count; k++) {
      const relay = this.#relays[ints[base + 2 * k]!];
      const mask = ints[base + 2 * k + 1]!;
      if (!relay) continue;
      if (mask & E_FIRST0) relay.onFirstBytes?.(0);
      if (mask & E_FIRST1) relay.onFirstBytes?.(1);
      if (mask & E_DATA0) relay.up.onWake?.();
      if (mask & E_DATA1) relay.down.onWake?.();
      if (mask & E_FIN0) relay.onFin?.(0);
      if (mask & E_FIN1) relay.onFin?.(1);
      if (mask & E_DONE) relay.onDone?.(relay.failure);
    }
  }
}

function join(a: Buffer | null | undefined, b: Buffer | null): Buffer | null {
  if (a?.length && b?.length) return Buffer.concat([a, b]);
  return a?.length ? a : b?.length ? b : null;
}
