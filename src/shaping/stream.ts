/**
 * ShapingStream: the library's shaping Transform (exported from the package root by src/lib.ts).
 * It is a Flow (flow.ts) of its engine's scheduler, the same scheduler and grant rules as the
 * proxy's socket flows.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { ChunkQueue } from './chunks.js';
import type { Flow } from './flow.js';
import { SchedNode, type Scheduler } from './scheduler.js';
import { ShapingEngine, SharedCap, capNode, chainCaps, engineScheduler, optionsError, parseLimits, type Limits, type RateInput, type SizeInput } from './cap.js';

export interface ShapingStreamOptions {
  /** this stream's own rate, bytes/s ("1MiB/s", "100mbit", a number); default unlimited (held by its caps only) */
  rate?: RateInput;
  /** the bucket size of `rate`: the most it passes at once after a quiet spell (default: 32 KiB or 10 ms of the rate, whichever is more) */
  burst?: SizeInput;
  /** the SharedCaps above the stream, nearest first: [customerCap, tierCap] puts the stream under customerCap under tierCap */
  caps?: readonly SharedCap[];
  /** default: the caps' engine, else the default engine (the real clock) */
  engine?: ShapingEngine;
  /** bytes the stream queues for tokens before it stops taking writes, and holds on its readable side (default: 16 KiB, fixed here because Node 22 raised its own default to 64 KiB; memory per connection is the same on every Node) */
  highWaterMark?: number;
}

/** the buffer each side of a ShapingStream by default: Node 20's default, kept on Node 22+ */
const STREAM_HIGH_WATER_MARK = 16 * 1024;

/**
 * A Transform that passes its bytes on unchanged and in order, no faster than its `rate` and its
 * share of every SharedCap above it. Backpressure holds both ways: it queues at most about its
 * highWaterMark (plus one chunk) for tokens before it stops taking writes, and stops passing bytes
 * while its readable side is full. At end() it passes every queued byte before 'end'.
 */
export class ShapingStream extends Transform {
  readonly engine: ShapingEngine;
  readonly caps: readonly SharedCap[];
  readonly #scheduler: Scheduler;
  readonly #node: SchedNode;
  #limits: Limits;
  readonly #queue = new ChunkQueue();
  /** the readable side takes more */
  #wants = true;
  /** a write held until the queue is below highWaterMark */
  #writeCb: TransformCallback | null = null;
  /** end(): called once the queue is empty */
  #flushCb: TransformCallback | null = null;
  #detached = false;

  constructor(options: ShapingStreamOptions = {}) {
    super({ highWaterMark: options.highWaterMark ?? STREAM_HIGH_WATER_MARK });
    const caps = options.caps ?? [];
    if (!Array.isArray(caps) || !caps.every((c) => c instanceof SharedCap)) {
      throw optionsError('ShapingStream caps: a list of SharedCaps, nearest first (e.g. [customerCap, tierCap])');
    }
    this.#limits = parseLimits('ShapingStream', options.rate, options.burst);
    const engine = options.engine ?? caps[0]?.engine ?? ShapingEngine.default;
    for (const cap of caps) {
      if (cap.engine !== engine) throw optionsError(`ShapingStream caps: SharedCap ${cap.name} belongs to another engine than the stream`);
    }
    chainCaps(caps, 'ShapingStream caps');
    this.engine = engine;
    this.caps = [...caps];
    this.#scheduler = engineScheduler(engine);
    const flow: Flow = { sendable: () => (this.#wants ? this.#queue.bytes : 0), pass: (n) => this.#pass(n) };
    this.#node = new SchedNode('stream', flow);
    this.#scheduler.setLimits(this.#node, this.#limits.rate, this.#limits.burst);
    this.#scheduler.attach(this.#node, caps.length > 0 ? capNode(caps[0]!) : this.#scheduler.root);
  }

  /** bytes/s of the stream's own bucket (Infinity: none) */
  get rate(): number {
    return this.#limits.rate;
  }

  get burst(): number {
    return this.#limits.burst;
  }

  /** Bytes written and waiting for tokens (or for the reader). */
  get held(): number {
    return this.#queue.bytes;
  }

  /** Change the stream's own rate (and burst) live; without `burst`, one given before is kept. */
  setRate(rate: RateInput, burst?: SizeInput): void {
    this.#limits = parseLimits('ShapingStream', rate, burst, this.#limits);
    if (!this.#detached) this.#scheduler.setLimits(this.#node, this.#limits.rate, this.#limits.burst);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length > 0) {
      this.#queue.push(chunk);
      this.#scheduler.wake(this.#node);
    }
    if (this.#queue.bytes < this.writableHighWaterMark) callback();
    else this.#writeCb = callback;
  }

  override _flush(callback: TransformCallback): void {
    if (this.#queue.bytes === 0) {
      this.#detach();
      callback();
    } else this.#flushCb = callback;
  }

  override _read(size: number): void {
    if (!this.#wants) {
      this.#wants = true;
      if (this.#queue.bytes > 0) this.#scheduler.wake(this.#node);
    }
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#detach();
    this.#queue.clear();
    this.#writeCb = null;
    this.#flushCb = null;
    callback(error);
  }

  /** The scheduler's grant: push `n` bytes to the readable side, then let writes (or the end) go on. */
  #pass(n: number): void {
    const queue = this.#queue;
    for (let left = n; left > 0; ) {
      const piece = queue.next(left);
      left -= piece.length;
      if (!this.push(piece)) this.#wants = false;
      if (this.#detached) return; // destroyed by a reader while it was handed the bytes
    }
    if (queue.bytes === 0 && this.#flushCb) {
      const flushed = this.#flushCb;
      this.#flushCb = null;
      this.#detach();
      flushed();
    } else if (this.#writeCb && queue.bytes < this.writableHighWaterMark) {
      const written = this.#writeCb;
      this.#writeCb = null;
      written();
    }
  }

  #detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#scheduler.detach(this.#node);
  }
}
