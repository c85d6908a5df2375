import { Duplex } from 'node:stream';
import { SchedNode, type Leaf, type Scheduler } from './scheduler.js';

/**
 * The shaping stage of one direction of one connection: a Duplex piped
 * between a socket's readable side and the other socket's writable side.
 *
 * It holds one chunk at a time (writableHighWaterMark 0: the pipe pauses the
 * source socket until the chunk has gone), and hands it on in pieces as the
 * scheduler grants tokens. Bytes are never copied, altered or dropped, and
 * the end of stream is passed on only after the last byte (_final runs after
 * the last write callback).
 */
export class ShapingStream extends Duplex implements Leaf {
  readonly node: SchedNode;
  #chunk: Buffer | null = null;
  #offset = 0;
  #callback: ((err?: Error | null) => void) | null = null;
  #downstreamWants = true;
  /** Set when a chunk is being held (for shaping-delay figures). */
  heldSince = 0;
  /** total ms chunks waited in this stage */
  waitedMs = 0;
  readonly #scheduler: Scheduler;
  readonly #release = () => {
    const cb = this.#callback!;
    this.#callback = null;
    cb();
  };

  constructor(scheduler: Scheduler, label: string) {
    super({ writableHighWaterMark: 0, readableHighWaterMark: 64 * 1024, allowHalfOpen: true, decodeStrings: false });
    this.#scheduler = scheduler;
    this.node = new SchedNode(label, this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#chunk = chunk;
    this.#offset = 0;
    this.#callback = callback;
    this.heldSince = this.#scheduler.clock.now();
    this.#scheduler.wake(this.node);
  }

  override _read(): void {
    this.#downstreamWants = true;
    if (this.#chunk) this.#scheduler.wake(this.node);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#scheduler.detach(this.node);
    this.#chunk = null;
    callback(err);
  }

  sendable(): number {
    return this.#chunk !== null && this.#downstreamWants ? this.#chunk.length - this.#offset : 0;
  }

  pass(n: number): void {
    const chunk = this.#chunk!;
    const start = this.#offset;
    this.#offset += n;
    const whole = start === 0 && n === chunk.length;
    if (this.#offset >= chunk.length) {
      this.#chunk = null;
      this.waitedMs += this.#scheduler.clock.now() - this.heldSince;
      // Async, so the next chunk never arrives in the middle of a serve pass.
      process.nextTick(this.#release);
    }
    if (!this.push(whole ? chunk : chunk.subarray(start, start + n))) this.#downstreamWants = false;
  }

  /** Bytes held here right now (for memory figures). */
  get held(): number {
    return this.#chunk ? this.#chunk.length - this.#offset : 0;
  }
}
