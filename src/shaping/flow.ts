import type { OnReadOpts, Socket } from 'node:net';
import { SchedNode, type Leaf, type Scheduler } from './scheduler.js';

/**
 * The shaping stage of one direction of one connection: bytes read from the
 * source socket wait here until the scheduler grants tokens, then go to the
 * destination socket, in order, never copied, altered or dropped.
 *
 * Once `limit` bytes wait, the source stops reading (the kernel's window then
 * pushes back on the sender), and it reads again when the queue is empty: a
 * flow holds about one read. A slow destination takes
 * the flow out of the scheduler until it drains. The source's FIN is passed
 * on only after the last queued byte has been written.
 *
 * No stream machinery sits in between: the backend socket of a shaped
 * connection reads straight into buffers this flow owns (see readInto), so a
 * slow connection holds one small read, not a 64 KiB chunk in the socket's
 * buffer plus another here.
 */
export class ShapedFlow implements Leaf {
  readonly node: SchedNode;
  #chunks: Buffer[] = [];
  #head = 0;
  #queued = 0;
  #dst: Socket | null = null;
  #src: Socket | null = null;
  #dstWants = true;
  #srcPaused = false;
  #resumeSrc: () => void = () => {};
  #srcEnded = false;
  #done = false;
  /** ms the queue has been non-empty in total, and since when it is (for shaping-delay figures). */
  waitedMs = 0;
  #since = 0;
  readonly #scheduler: Scheduler;
  readonly #onDrain = () => {
    this.#dstWants = true;
    this.#scheduler.wake(this.node);
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
   * Wire `src` -> this -> `dst`. A source created with `readInto()` as its
   * onread already feeds us; any other is read through 'data' events.
   */
  connect(src: Socket, dst: Socket, viaOnread: boolean): void {
    this.#src = src;
    this.#dst = dst;
    dst.on('drain', this.#onDrain);
    // A socket paused by its onread callback restarts through read(0) (its
    // stream was never paused); a 'data' source through resume().
    this.#resumeSrc = viaOnread ? () => src.read(0) : () => src.resume();
    if (!viaOnread) {
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
      if (!dst.write(piece)) this.#dstWants = false;
    }
    this.#queued -= n;
    if (this.#queued === 0) {
      this.waitedMs += this.#scheduler.clock.now() - this.#since;
      if (this.#srcEnded) this.#finish();
    }
    // Read again only once the queue is empty: a flow holds one read at a time.
    if (this.#srcPaused && this.#queued === 0) {
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

  /**
   * `onread` options for a socket that should read straight into its flow,
   * at most `size` bytes at a time. All sockets share one read buffer per
   * size and each read is copied out at once, so an idle socket holds no
   * read buffer of its own.
   */
  static readInto(holder: ReadHolder, size: number): OnReadOpts {
    const shared = (READ_BUFFERS[size] ??= Buffer.allocUnsafeSlow(size));
    return {
      buffer: shared,
      callback: (nread: number, buf: Uint8Array) => {
        const chunk = Buffer.from(buf.subarray(0, nread));
        const flow = holder.flow;
        if (!flow) {
          holder.early.push(chunk); // before the flow is wired: kept for it
          return true;
        }
        if (flow.feed(chunk)) return true;
        flow.#srcPaused = true;
        return false; // pauses the socket; pass() resumes it
      },
    };
  }

  destroy(): void {
    this.#done = true;
    this.#chunks.length = 0;
    this.#queued = 0;
    this.#dst?.off('drain', this.#onDrain);
    this.#scheduler.detach(this.node);
  }
}

const READ_BUFFERS: Record<number, Buffer> = {};

/** Where a socket's onread delivers before and after its flow exists. */
export interface ReadHolder {
  flow: ShapedFlow | null;
  early: Buffer[];
}
