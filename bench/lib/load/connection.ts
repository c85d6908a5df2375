/**
 * One load connection: connects, then runs its mode's send loop. Replies are matched by byte
 * count (an echo sends back as many bytes as it got): a FIFO of send times and the byte offset
 * where each message's reply ends, so pipelined messages (burst, delay) get their own latency.
 */
import net from 'node:net';
import type { LoadStats } from './stats.js';
import { errorKind } from './stats.js';
import type { Pacer } from './pacer.js';

export const MODES = ['ping-pong', 'burst', 'delay', 'download', 'upload'] as const;
export type Mode = (typeof MODES)[number];

export interface ConnectionOptions {
  host: string;
  port: number;
  localAddress?: string;
  mode: Mode;
  /** the messages, sent in turn from the first (upload: the writes) */
  payloads: Buffer[];
  /** messages before this connection is done (0: until stopped) */
  messages: number;
  /** burst: messages per burst */
  burst: number;
  /** delay: ms between sends */
  delayMs: number;
}

export type ConnState = 'connecting' | 'open' | 'closed';

export class LoadConnection {
  state: ConnState = 'connecting';
  /** true once its message quota is sent and answered */
  finished = false;
  readonly startedAt = performance.now();
  readonly #socket: net.Socket;
  readonly #times: number[] = [];
  readonly #ends: number[] = [];
  #head = 0;
  #sentBytes = 0;
  #receivedBytes = 0;
  #sent = 0;
  #stopping = false;
  #failed = false;
  // Two waiters, never one shared: a reply must not end a pause (delay mode then sent as fast as the
  // echo answered), and stop() must not end a wait for replies.
  /** ends a pending pause (delay, download) or drain wait: its timer or event, stop(), the close */
  #endPause: (() => void) | undefined;
  /** ends a pending wait for replies: the last reply, or the close */
  #endIdle: (() => void) | undefined;
  readonly closed: Promise<void>;

  constructor(
    readonly o: ConnectionOptions,
    readonly stats: LoadStats,
    readonly pacer: Pacer,
  ) {
    this.#socket = net.connect({ host: o.host, port: o.port, localAddress: o.localAddress, noDelay: true });
    this.#socket.on('error', (err) => this.fail(errorKind(err)));
    this.#socket.on('data', (d: Buffer) => this.#onData(d));
    this.closed = new Promise((resolve) => {
      this.#socket.on('close', () => {
        if (this.state === 'open' && !this.#stopping && !this.finished && !this.#failed) stats.error('EOF');
        this.state = 'closed';
        this.stats.dropped += this.inFlight;
        this.#head = this.#times.length;
        this.#wakePause();
        this.#wakeIdle();
        resolve();
      });
    });
    this.#socket.once('connect', () => {
      this.state = 'open';
      stats.connects++;
      this.#run().catch((err) => this.fail(errorKind(err)));
    });
  }

  get inFlight(): number {
    return this.#times.length - this.#head;
  }

  /** ms the oldest unanswered message has waited (0 when none) */
  oldestWait(now: number): number {
    return this.inFlight > 0 ? now - this.#times[this.#head]! : 0;
  }

  /** Stop sending; what is in flight may still be answered (drain). */
  stop(): void {
    this.#stopping = true;
    this.#wakePause();
  }

  /** Count an error of `kind` and close at once (once). */
  fail(kind: string): void {
    if (this.#failed || this.state === 'closed') return;
    this.#failed = true;
    this.stats.error(kind);
    this.destroy();
  }

  destroy(): void {
    this.#stopping = true;
    this.#socket.destroy();
  }

  get failed(): boolean {
    return this.#failed;
  }

  #wakePause(): void {
    const w = this.#endPause;
    this.#endPause = undefined;
    w?.();
  }

  #wakeIdle(): void {
    const w = this.#endIdle;
    this.#endIdle = undefined;
    w?.();
  }

  /** Resolves after `ms`, or sooner on stop() or the close (never on a reply). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => this.#wakePause(), ms);
      this.#endPause = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Resolves when nothing is in flight, or the connection closed. */
  #idle(): Promise<void> | undefined {
    if (this.inFlight === 0 || this.state === 'closed') return undefined;
    return new Promise((resolve) => (this.#endIdle = resolve));
  }

  #onData(d: Buffer): void {
    this.#receivedBytes += d.length;
    this.stats.bytesReceived += d.length;
    if (this.#head === this.#times.length) return;
    const now = performance.now();
    while (this.#head < this.#times.length && this.#ends[this.#head]! <= this.#receivedBytes) {
      this.stats.latency.record(now - this.#times[this.#head]!);
      this.stats.answered++;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times.splice(0, this.#head);
      this.#ends.splice(0, this.#head);
      this.#head = 0;
    }
    if (this.inFlight === 0) this.#wakeIdle();
  }

  #send(): void {
    const p = this.o.payloads[this.#sent % this.o.payloads.length]!;
    this.#sentBytes += p.length;
    this.#times.push(performance.now());
    this.#ends.push(this.#sentBytes);
    this.#sent++;
    this.stats.sent++;
    this.stats.bytesSent += p.length;
    this.#socket.write(p);
  }

  #more(): boolean {
    return !this.#stopping && this.state === 'open' && (this.o.messages === 0 || this.#sent < this.o.messages);
  }

  async #run(): Promise<void> {
    const { mode } = this.o;
    if (mode === 'download') {
      while (!this.#stopping && this.state === 'open') await this.#sleep(60_000);
    } else if (mode === 'upload') {
      await this.#upload();
    } else {
      while (this.#more()) {
        const n = mode === 'burst' ? this.o.burst : 1;
        for (let i = 0; i < n && this.#more(); i++) {
          // the pause sits between sends, so `--messages N` ends on the last reply, not on a pause
          if (mode === 'delay' && this.#sent > 0) await this.#sleep(this.o.delayMs);
          if (!this.#more()) break;
          const wait = this.pacer.take();
          if (wait) await wait;
          if (!this.#more()) break;
          this.#send();
        }
        if (mode !== 'delay') await this.#idle();
      }
      await this.#idle();
      if (this.state === 'open' && this.o.messages > 0 && this.#sent >= this.o.messages && this.inFlight === 0) this.finished = true;
    }
    if (this.state === 'open') this.#socket.end();
  }

  async #upload(): Promise<void> {
    const { payloads } = this.o;
    for (let i = 0; !this.#stopping && this.state === 'open'; i = (i + 1) % payloads.length) {
      const p = payloads[i]!;
      const wait = this.pacer.take();
      if (wait) await wait;
      this.stats.bytesSent += p.length;
      if (!this.#socket.write(p)) {
        await new Promise<void>((resolve) => {
          this.#endPause = resolve;
          this.#socket.once('drain', () => this.#wakePause());
        });
      }
    }
  }
}
