/**
 * One native relay and its two directions, as JavaScript sees them: typed-array reads and
 * writes on the memory the engine shares, no native call per grant.
 */
import os from 'node:os';
import type { Flow } from '../shaping/flow.js';
import type { NativeAddon } from './load.js';
import { F_EOF, F_FIN, H_DIRTY, S_DIR, S_DIRTY, S_DSTFULL, S_ERRNO, S_ERRSIDE, S_FLAGS, S_GRANTED, S_MOVED, S_OPEN, S_QUEUED, SLOT } from './layout.js';

/** 0: client -> backend (up), 1: backend -> client (down). */
export type Dir = 0 | 1;

export interface RelayFailure {
  /** The socket that failed (the other one was reset), or the engine (both were). */
  side: 'client' | 'backend' | 'engine';
  errno: number;
  /** ECONNRESET, EPIPE, EMFILE, ... */
  code: string;
}

/** Shared views and the header offset, handed from the engine to its relays and flows. */
export interface Shared {
  addon: NativeAddon;
  state: Float64Array;
  ints: Int32Array;
  header: number;
}

const ERRNO_NAMES = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));
const SIDES = ['client', 'backend', 'engine'] as const;

/**
 * One direction of a relay: the scheduler's flow. The pipe is its queue; `sendable()` and
 * `pass(n)` are a few typed-array operations, and the engine moves granted bytes at the next
 * commit (the engine commits by itself before the event loop next waits).
 */
export class NativeFlow implements Flow {
  /** Called when a shaped direction has sendable bytes again (the scheduler's wake). */
  onWake: (() => void) | null = null;
  readonly #sh: Shared;
  readonly #at: number;
  readonly #entry: number;
  /** false once the relay was closed: its slot may already be another relay's */
  #live = true;
  /** the count and flags as they were when the relay closed */
  #final = 0;
  #finalFlags = 0;

  constructor(
    sh: Shared,
    readonly id: number,
    readonly dir: Dir,
  ) {
    this.#sh = sh;
    this.#at = id * SLOT + dir * S_DIR;
    this.#entry = id * 2 + dir;
  }

  /** Bytes waiting that the destination could take now and no grant covers (0 while it is full). */
  sendable(): number {
    if (!this.#live) return 0;
    const s = this.#sh.state;
    const at = this.#at;
    if (s[at + S_DSTFULL]) return 0;
    const v = s[at + S_QUEUED]! - (s[at + S_GRANTED]! - s[at + S_MOVED]!);
    return v > 0 ? v : 0;
  }

  /** Grants `n` more bytes (n <= sendable()); they move at the engine's next commit. */
  pass(n: number): void {
    if (!this.#live) return;
    const { state: s, ints, header } = this.#sh;
    const at = this.#at;
    s[at + S_GRANTED] += n;
    if (!s[at + S_DIRTY]) {
      s[at + S_DIRTY] = 1;
      const k = s[header + H_DIRTY]!;
      ints[k] = this.#entry;
      s[header + H_DIRTY] = k + 1;
    }
  }

  /** Bytes waiting in the engine (granted or not). */
  get queued(): number {
    return this.#live ? this.#sh.state[this.#at + S_QUEUED]! : 0;
  }

  /** Bytes written to the destination, ever. */
  get moved(): number {
    return this.#live ? this.#sh.state[this.#at + S_MOVED]! : this.#final;
  }

  /** The relay closed: keep the count and flags, never touch the slot again. */
  retire(): void {
    this.#final = this.moved;
    this.#finalFlags = this.#flags();
    this.#live = false;
  }

  #flags(): number {
    return this.#live ? this.#sh.state[this.#at + S_FLAGS]! | 0 : this.#finalFlags;
  }

  get destinationFull(): boolean {
    return this.#live && this.#sh.state[this.#at + S_DSTFULL] === 1;
  }

  /** The source sent its FIN. */
  get ended(): boolean {
    return (this.#flags() & F_EOF) !== 0;
  }

  /** The FIN was passed on after the last byte. */
  get finished(): boolean {
    return (this.#flags() & F_FIN) !== 0;
  }

  /**
   * Shaped: only granted bytes move. Unshaped: everything moves at once. `limit` bounds the bytes
   * read ahead (0: the pipe's capacity).
   */
  configure(shaped: boolean, limit = 0): void {
    if (!this.#live) return;
    // Grants count from what has moved so far: nothing passes until the next pass().
    if (shaped) this.#sh.state[this.#at + S_GRANTED] = this.moved;
    this.#sh.addon.configure(this.id, this.dir, shaped ? 1 : 0, limit);
  }
}

export class NativeRelay {
  readonly up: NativeFlow;
  readonly down: NativeFlow;
  /** A direction read its first bytes from its source (once each: 1 is the backend's first byte). */
  onFirstBytes: ((dir: Dir) => void) | null = null;
  /** A direction passed its FIN on. */
  onFin: ((dir: Dir) => void) | null = null;
  /** The relay let go of its sockets: both FINs passed on (failure null), or a failure. */
  onDone: ((failure: RelayFailure | null) => void) | null = null;
  #released = false;
  /** the failure as it was at close() */
  #failure: RelayFailure | null = null;
  readonly #sh: Shared;
  readonly #release: (relay: NativeRelay) => void;

  constructor(
    sh: Shared,
    readonly id: number,
    release: (relay: NativeRelay) => void,
  ) {
    this.#sh = sh;
    this.#release = release;
    this.up = new NativeFlow(sh, id, 0);
    this.down = new NativeFlow(sh, id, 1);
  }

  /** Still holding its sockets. */
  get open(): boolean {
    return !this.#released && this.#sh.state[this.id * SLOT + S_OPEN] === 1;
  }

  /** Bytes client -> backend and backend -> client, ever (the idle sweep compares these). */
  get bytesUp(): number {
    return this.up.moved;
  }

  get bytesDown(): number {
    return this.down.moved;
  }

  /** Why the relay failed, or null. */
  get failure(): RelayFailure | null {
    if (this.#released) return this.#failure;
    const s = this.#sh.state;
    const errno = s[this.id * SLOT + S_ERRNO]!;
    if (!errno) return null;
    return { side: SIDES[s[this.id * SLOT + S_ERRSIDE]!] ?? 'engine', errno, code: ERRNO_NAMES.get(errno) ?? `E${errno}` };
  }

  /** Moves the grants made since the engine's last commit now (the engine commits by itself before the loop waits). */
  commit(): void {
    if (this.open) this.#sh.addon.commit();
  }

  /**
   * Ends gracefully: reads no more from either side, writes what waits (a shaped direction as its
   * grants allow), then passes a FIN each way; onDone follows. close() after that frees the slot.
   */
  end(): void {
    if (this.open) this.#sh.addon.end(this.id);
  }

  /**
   * Lets go of everything: closes both sockets (as socket.destroy() would; `reset`: with an RST)
   * and frees the slot. Bytes still waiting are dropped. Idempotent; the counters and failure
   * stay readable.
   */
  close(reset = false): void {
    if (this.#released) return;
    this.#failure = this.failure;
    this.up.retire();
    this.down.retire();
    this.#released = true;
    this.#sh.addon.release(this.id, reset);
    this.#release(this);
  }

  get released(): boolean {
    return this.#released;
  }
}
