import type { OnReadOpts, Socket } from 'node:net';
import { SchedNode, type Leaf, type Scheduler } from './scheduler.js';

/**
 * The shaping stage of one direction of one connection: bytes read from the
 * source socket wait here until the scheduler grants tokens, then go to the
 * destination socket, in order, never copied, altered or dropped.
 *
 * Once `limit` bytes wait, the source stops reading (the kernel's window then
 * pushes back on the sender), and it reads again when the queue is empty: a
 * flow holds about one read. A slow destination takes the flow out of the
 * scheduler until it drains. The source's FIN is passed on only after the
 * last queued byte has been written.
 *
 * The backend socket of a shaped connection reads straight into a buffer the
 * flow owns (net's onread, see ownedRead): no copy, no garbage per read, and
 * the buffer is reused only after every write from it has completed. The
 * client socket (accepted sockets take no onread) is read through 'data'.
 */
export class ShapedFlow implements Leaf {
  readonly node: SchedNode;
  #chunks: Buffer[] = [];
  #head = 0;
  #queued = 0;
  #dst: Socket | null = null;
  #dstWants = true;
  #srcPaused = false;
  #resumeSrc: () => void = () => {};
  /** reads land in a buffer we reuse: wait for our writes from it to complete */
  #owned = false;
  #writing = 0;
  #srcEnded = false;
  #done = false;
  /** ms the queue has been non-empty in total (for shaping-delay figures) */
  waitedMs = 0;
  /** Sees every chunk as it arrives (the Foo analyser); must not keep or change it. */
  observe: ((chunk: Buffer) => void) | null = null;
  /** Called once, at the first byte from the source. */
  onFirstByte: (() => void) | null = null;
  #since = 0;
  readonly #scheduler: Scheduler;
  readonly #onDrain = () => {
    this.#dstWants = true;
    this.#scheduler.wake(this.node);
  };
  readonly #onWritten = () => {
    this.#writing--;
    this.#maybeResume();
  };

  constructor(
    scheduler: Scheduler,
    label: string,
    readonly limit: number,
  ) {
    this.#scheduler = scheduler;
    this.node = new SchedNode(label, this);
  }

  /**
   * Wire `src` -> this -> `dst`. With `read` (from ownedRead), src already
   * reads into the flow's buffer; otherwise it is read through 'data' events.
   */
  connect(src: Socket, dst: Socket, read?: OwnedRead): void {
    this.#dst = dst;
    dst.on('drain', this.#onDrain);
    if (read) {
      // Paused by its onread callback, the socket restarts through read(0):
      // its stream was never paused.
      this.#owned = true;
      this.#resumeSrc = () => src.read(0);
      read.flow = this;
      if (read.early) {
        const early = read.early;
        read.early = null;
        this.#srcPaused = true;
        this.feed(early);
      }
    } else {
      this.#resumeSrc = () => src.resume();
      src.on('data', (chunk: Buffer) => {
        if (!this.feed(chunk)) {
          this.#srcPaused = true;
          src.pause();
        }
      });
    }
    src.on('end', () => this.end());
  }

  /** Queue bytes from the source; false when it should stop reading for now. */
  feed(chunk: Buffer): boolean {
    if (this.#done) return false;
    if (this.onFirstByte) {
      const first = this.onFirstByte;
      this.onFirstByte = null;
      first();
    }
    this.observe?.(chunk);
    if (this.#queued === 0) this.#since = this.#scheduler.clock.now();
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    this.#scheduler.wake(this.node);
    return this.#queued < this.limit;
  }

  /** The source sent its FIN. */
  end(): void {
    this.#srcEnded = true;
    if (this.#queued === 0) this.#finish();
  }

  sendable(): number {
    return this.#dstWants ? this.#queued : 0;
  }

  pass(n: number): void {
    const dst = this.#dst!;
    const owned = this.#owned;
    let left = n;
    while (left > 0) {
      const chunk = this.#chunks[0]!;
      const avail = chunk.length - this.#head;
      let piece: Buffer;
      if (avail <= left) {
        piece = this.#head === 0 ? chunk : chunk.subarray(this.#head);
        this.#chunks.shift();
        this.#head = 0;
        left -= avail;
      } else {
        piece = chunk.subarray(this.#head, this.#head + left);
        this.#head += left;
        left = 0;
      }
      let more: boolean;
      if (owned) {
        this.#writing++;
        more = dst.write(piece, this.#onWritten);
      } else more = dst.write(piece);
      if (!more) this.#dstWants = false;
    }
    this.#queued -= n;
    if (this.#queued === 0) {
      this.waitedMs += this.#scheduler.clock.now() - this.#since;
      if (this.#srcEnded) this.#finish();
    }
    this.#maybeResume();
  }

  /** Read again once the queue is empty (and, for an owned buffer, no write still uses it). */
  #maybeResume(): void {
    if (this.#srcPaused && this.#queued === 0 && this.#writing === 0 && !this.#done) {
      this.#srcPaused = false;
      this.#resumeSrc();
    }
  }

  /** Bytes waiting here now. */
  get held(): number {
    return this.#queued;
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#dst?.end();
  }

  /** Called from the onread callback: the read is queued and the socket pauses until it is written. */
  fromOwnedRead(chunk: Buffer): false {
    this.#srcPaused = true;
    this.feed(chunk);
    return false;
  }

  destroy(): void {
    this.#done = true;
    this.#chunks.length = 0;
    this.#queued = 0;
    this.#dst?.off('drain', this.#onDrain);
    this.#scheduler.detach(this.node);
  }
}

/**
 * A backend socket's read path into its down flow: one buffer of `size`
 * bytes per connection (FIRST_READ until a read fills that), reused for every read. `onread` goes to net.connect;
 * the flow is attached once the connection is set up (a read that lands
 * before that is kept in `early`, and the socket waits).
 */
export interface OwnedRead {
  onread: OnReadOpts;
  flow: ShapedFlow | null;
  early: Buffer | null;
}

export function ownedRead(size: number): OwnedRead {
  // A connection starts with a small buffer and gets its full one only once a read fills the
  // small one: idle connections (most of 10,000) then hold 1 KiB, not 16 KiB with a resident page.
  // net asks `buffer()` at connect and again after every read; a buffer given up is never handed
  // out again, so bytes still queued from it stay intact.
  let buffer = Buffer.allocUnsafeSlow(Math.min(size, FIRST_READ));
  const read: OwnedRead = {
    flow: null,
    early: null,
    onread: {
      buffer: () => buffer,
      callback: (nread: number) => {
        const chunk = buffer.subarray(0, nread);
        if (nread === buffer.length && buffer.length < size) buffer = Buffer.allocUnsafeSlow(size);
        if (read.flow) return read.flow.fromOwnedRead(chunk);
        read.early = chunk;
        return false;
      },
    },
  };
  return read;
}

/** Bytes of a connection's first owned read buffer (see ownedRead). */
export const FIRST_READ = 1024;
