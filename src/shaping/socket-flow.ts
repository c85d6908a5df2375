import type { OnReadOpts, Socket } from 'node:net';
import { SchedNode, type Scheduler } from './scheduler.js';
import type { Flow } from './flow.js';
import { ChunkQueue } from './chunks.js';
import { FIRST_READ } from './grants.js';
import { probeReset } from '../net/probe-reset.js';

/**
 * The socket flow (a Flow, see flow.ts): the shaping stage of one direction
 * of one connection. Bytes read from the source socket wait here until the
 * scheduler grants tokens, then go to the destination socket, in order,
 * never copied, altered or dropped.
 *
 * Once `limit` bytes wait, the source stops reading (the kernel's window then
 * pushes back on the sender), and it reads again when the queue is empty: a
 * flow holds about one read. A slow destination takes the flow out of the
 * scheduler until it drains. The source's FIN is passed on only after the
 * last queued byte has been written.
 *
 * The backend socket of a shaped connection reads through net's onread (see
 * ownedRead): while the connection is light, into a buffer all light
 * connections share, copied out at once; from its first read of FIRST_READ
 * bytes, straight into a buffer of its own: no copy, no garbage per read, and
 * the buffer is reused only after every write from it has completed. The
 * client socket (accepted sockets take no onread) is read through 'data'.
 * The flow's socket listeners are shared functions (see FlowEnds).
 */
export class ShapedFlow implements Flow {
  readonly node: SchedNode;
  readonly #queue = new ChunkQueue();
  #src: Socket | null = null;
  #dst: Socket | null = null;
  #dstWants = true;
  #srcPaused = false;
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
  /** The write callback of an owned-buffer flow (the one closure a flow has; null when not owned). */
  #onWritten: (() => void) | null = null;

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
    this.#src = src;
    this.#dst = dst;
    // Shared listeners (no closures per connection): each socket names the flows at its ends.
    (src as FlowEnds)[kReadBy] = this;
    (dst as FlowEnds)[kWrittenBy] = this;
    dst.on('drain', onDstDrain);
    if (read) {
      this.#owned = true;
      this.#onWritten = () => {
        this.#writing--;
        this.#maybeResume();
      };
      read.flow = this;
      if (read.early) {
        const early = read.early;
        read.early = null;
        this.#srcPaused = true;
        this.feed(early);
      }
    } else src.on('data', onSrcData);
    src.on('end', onSrcEnd);
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
    const queue = this.#queue;
    if (queue.bytes === 0) this.#since = this.#scheduler.clock.now();
    queue.push(chunk);
    this.#scheduler.wake(this.node);
    return queue.bytes < this.limit;
  }

  /** The source sent its FIN. */
  end(): void {
    this.#srcEnded = true;
    if (this.#queue.bytes === 0) this.#finish();
  }

  sendable(): number {
    return this.#dstWants ? this.#queue.bytes : 0;
  }

  pass(n: number): void {
    const dst = this.#dst!;
    const owned = this.#owned;
    const queue = this.#queue;
    for (let left = n; left > 0; ) {
      const piece = queue.next(left);
      left -= piece.length;
      let more: boolean;
      if (owned) {
        this.#writing++;
        more = dst.write(piece, this.#onWritten!);
      } else more = dst.write(piece);
      if (!more) this.#dstWants = false;
    }
    if (queue.bytes === 0) {
      this.waitedMs += this.#scheduler.clock.now() - this.#since;
      if (this.#srcEnded) this.#finish();
    }
    this.#maybeResume();
  }

  /** Read again once the queue is empty (and, for an owned buffer, no write still uses it). */
  #maybeResume(): void {
    if (this.#srcPaused && this.#queue.bytes === 0 && this.#writing === 0 && !this.#done) {
      this.#srcPaused = false;
      // An owned-read socket was paused by its onread callback and restarts through read(0)
      // (its stream was never paused); a 'data' one was paused.
      if (this.#owned) this.#src!.read(0);
      else this.#src!.resume();
    }
  }

  /** Bytes waiting here now. */
  get held(): number {
    return this.#queue.bytes;
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

  /** The destination can take more. */
  dstDrained(): void {
    this.#dstWants = true;
    this.#scheduler.wake(this.node);
  }

  /** A chunk from a 'data' source. */
  fromData(chunk: Buffer): void {
    if (!this.feed(chunk)) {
      this.#srcPaused = true;
      this.#src!.pause();
    }
  }

  destroy(): void {
    this.#done = true;
    this.#queue.clear();
    this.#dst?.off('drain', onDstDrain);
    this.#scheduler.detach(this.node);
  }
}

const kReadBy = Symbol('shaper.readBy');
const kWrittenBy = Symbol('shaper.writtenBy');
/** A socket with the flows at its ends: the one reading it and the one writing to it. */
type FlowEnds = Socket & { [kReadBy]?: ShapedFlow; [kWrittenBy]?: ShapedFlow };

function onSrcData(this: FlowEnds, chunk: Buffer): void {
  this[kReadBy]!.fromData(chunk);
}

function onSrcEnd(this: FlowEnds): void {
  probeReset(this);
  this[kReadBy]!.end();
}

function onDstDrain(this: FlowEnds): void {
  this[kWrittenBy]?.dstDrained();
}

/**
 * A backend socket's read path into its down flow. `onread` goes to net.connect; the flow is
 * attached once the connection is set up (a read that lands before that is kept in `early`, and
 * the socket waits).
 */
export interface OwnedRead {
  onread: OnReadOpts;
  flow: ShapedFlow | null;
  early: Buffer | null;
}

/** The read buffer light connections share (see ownedRead); sized to the largest read asked for. */
let shared: Buffer | null = null;

/**
 * A connection starts light: its reads land in one buffer all light connections share, and are
 * copied out at once (net calls the callback synchronously after each read, before any other
 * socket reads). The first read of FIRST_READ bytes or more gives it a buffer of its own, `size`
 * bytes, reused for every read from then on: no copy and no garbage per read, and the socket
 * reads again only after every write from it completed. So the thousands of idle connections of
 * a busy proxy hold no read buffer at all. net asks `buffer()` at connect and after every read.
 */
export function ownedRead(size: number): OwnedRead {
  if (!shared || shared.length < size) shared = Buffer.allocUnsafeSlow(size);
  let own: Buffer | null = null;
  const read: OwnedRead = {
    flow: null,
    early: null,
    onread: {
      buffer: () => own ?? shared!,
      callback: (nread: number, buf: Uint8Array) => {
        let chunk: Buffer;
        if (buf === own) chunk = own.subarray(0, nread);
        else {
          // Out of the shared buffer: into the connection's new own one when this read shows
          // traffic (read into again only once this chunk is written), else into a small copy.
          if (nread >= FIRST_READ) {
            own = Buffer.allocUnsafeSlow(Math.max(size, nread));
            chunk = own.subarray(0, nread);
          } else chunk = Buffer.allocUnsafe(nread);
          chunk.set(buf.subarray(0, nread));
        }
        if (read.flow) return read.flow.fromOwnedRead(chunk);
        read.early = chunk;
        return false;
      },
    },
  };
  return read;
}
