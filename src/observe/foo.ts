import type { Clock } from '../clock.js';
import { MovingRate, roundRate } from './windows.js';

/**
 * Observer for the Foo protocol: counts messages and measures per-request
 * latency from the bytes the proxy relays, without touching them.
 *
 *   Msg  := Type ' ' Seq [' ' Data] '\n'
 *   Type := REQ | ACK | NAK          (REQ from the client, ACK/NAK from the server)
 *   Seq  := one or more ASCII digits (per connection)
 *
 * Decisions where the grammar is silent:
 * - msg_total = msg_req + msg_ack + msg_nak: it counts valid messages only;
 *   anything else is counted once in msg_invalid.
 * - Invalid: wrong or lower-case type, a separator other than one space, a Seq
 *   that is empty or not all digits, an empty line, a line longer than
 *   MAX_LINE bytes, and a message from the wrong side (REQ from the server,
 *   ACK/NAK from the client) — the request and response counters and rates
 *   describe requests and answers, which those are not.
 * - One '\r' before the '\n' is tolerated (telnet and many clients send CRLF):
 *   with Data it is simply part of Data, without Data it is ignored, so
 *   "ACK 2\r\n" is ACK 2. Data is not inspected (nor checked to be UTF-8).
 * - An ACK/NAK for a seq with no outstanding REQ is counted but gives no latency.
 * - A REQ reusing a seq that is still outstanding keeps the first REQ's time.
 * - A Seq of more than 15 digits is a valid message, but its latency is not
 *   tracked (its value would not be exact as a number).
 */

/** Longest line (bytes before '\n', a '\r' included) the analyser will parse. */
export const MAX_LINE = 1024;
/** Most REQs a connection may have awaiting an answer; beyond it the oldest is forgotten. */
export const MAX_OUTSTANDING = 1024;

/** The counters saved and restored across restarts. */
export const FOO_COUNTER_NAMES = ['msg_total', 'msg_req', 'msg_ack', 'msg_nak', 'msg_invalid'] as const;
export type FooCounterName = (typeof FOO_COUNTER_NAMES)[number];

export interface FooStats extends Record<FooCounterName, number> {
  request_rate_1s: number;
  request_rate_10s: number;
  response_rate_1s: number;
  response_rate_10s: number;
}

/** Counters and rates shared by every Foo connection of the proxy. */
export class FooCounters {
  msg_total = 0;
  msg_req = 0;
  msg_ack = 0;
  msg_nak = 0;
  msg_invalid = 0;
  readonly requestRate1s: MovingRate;
  readonly requestRate10s: MovingRate;
  /** ACK + NAK. */
  readonly responseRate1s: MovingRate;
  readonly responseRate10s: MovingRate;

  constructor(clock: Clock) {
    this.requestRate1s = new MovingRate(clock, 1_000);
    this.requestRate10s = new MovingRate(clock, 10_000);
    this.responseRate1s = new MovingRate(clock, 1_000);
    this.responseRate10s = new MovingRate(clock, 10_000);
  }

  /** Add what one chunk held. Analysers call this once per chunk, not per message. */
  record(req: number, ack: number, nak: number, invalid: number): void {
    this.msg_req += req;
    this.msg_ack += ack;
    this.msg_nak += nak;
    this.msg_invalid += invalid;
    this.msg_total += req + ack + nak;
    if (req > 0) {
      this.requestRate1s.add(req);
      this.requestRate10s.add(req);
    }
    const responses = ack + nak;
    if (responses > 0) {
      this.responseRate1s.add(responses);
      this.responseRate10s.add(responses);
    }
  }

  toJSON(): FooStats {
    return {
      msg_total: this.msg_total,
      msg_req: this.msg_req,
      msg_ack: this.msg_ack,
      msg_nak: this.msg_nak,
      msg_invalid: this.msg_invalid,
      request_rate_1s: roundRate(this.requestRate1s.rate()),
      request_rate_10s: roundRate(this.requestRate10s.rate()),
      response_rate_1s: roundRate(this.responseRate1s.rate()),
      response_rate_10s: roundRate(this.responseRate10s.rate()),
    };
  }

  /**
   * Set the five counters from a saved object (e.g. toJSON() output read back
   * from disk). A counter is taken only if it is a safe integer >= 0; anything
   * else, rates included, is ignored. Returns how many counters were set.
   */
  restore(saved: unknown): number {
    if (typeof saved !== 'object' || saved === null) return 0;
    const record = saved as Record<string, unknown>;
    let restored = 0;
    for (const name of FOO_COUNTER_NAMES) {
      const value = record[name];
      if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
        this[name] = value;
        restored++;
      }
    }
    return restored;
  }
}

const CH_LF = 0x0a;
const CH_CR = 0x0d;
const CH_SPACE = 0x20;
const CH_0 = 0x30;
const CH_9 = 0x39;

const INVALID = 0;
const REQ = 1;
const ACK = 2;
const NAK = 3;
type Kind = typeof INVALID | typeof REQ | typeof ACK | typeof NAK;

/** Longest Seq whose value is exact in a double (10^15 < 2^53). */
const MAX_TRACKED_SEQ_DIGITS = 15;
/** Shortest possible message: "REQ 0". */
const MIN_LINE = 5;

/** Line-splitting state of one direction. */
class Side {
  /** Start of a line split across chunks; allocated on first need. */
  carry: Buffer | undefined;
  carryLen = 0;
  /** Inside a line already counted as too long: drop bytes up to the next '\n'. */
  skipping = false;
  constructor(readonly fromClient: boolean) {}
}

/**
 * One per proxied Foo connection. Feed it every chunk of each direction;
 * chunks are only read during the call, never kept or changed. Never throws on
 * any input (non-Foo clients just add to msg_invalid); only a throwing
 * onLatency callback can make it throw.
 */
export class FooAnalyzer {
  readonly #counters: FooCounters;
  readonly #clock: Clock;
  readonly #onLatency: ((ms: number) => void) | undefined;
  readonly #client = new Side(true);
  readonly #server = new Side(false);
  /** seq -> time of its REQ, oldest first (Map keeps insertion order). */
  readonly #outstanding = new Map<number, number>();
  // Tallies of the chunk being parsed, flushed to the counters once per chunk.
  #req = 0;
  #ack = 0;
  #nak = 0;
  #invalid = 0;
  #now = 0;

  constructor(counters: FooCounters, clock: Clock, onLatency?: (ms: number) => void) {
    this.#counters = counters;
    this.#clock = clock;
    this.#onLatency = onLatency;
  }

  /** Bytes the client sent towards the server. */
  client(chunk: Buffer): void {
    this.#feed(this.#client, chunk);
  }

  /** Bytes the server sent towards the client. */
  server(chunk: Buffer): void {
    this.#feed(this.#server, chunk);
  }

  /** REQs awaiting an answer (at most MAX_OUTSTANDING). */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  #feed(side: Side, chunk: Buffer): void {
    this.#now = this.#clock.now();
    this.#req = this.#ack = this.#nak = this.#invalid = 0;
    try {
      this.#split(side, chunk);
    } finally {
      // Even if onLatency throws, what was parsed so far is counted.
      if (this.#req + this.#ack + this.#nak + this.#invalid > 0) {
        this.#counters.record(this.#req, this.#ack, this.#nak, this.#invalid);
      }
    }
  }

  #split(side: Side, chunk: Buffer): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      const lf = chunk.indexOf(CH_LF, pos);
      if (lf === -1) {
        this.#keepPartial(side, chunk, pos, end);
        return;
      }
      const next = lf + 1;
      if (side.skipping) {
        side.skipping = false;
      } else if (side.carryLen > 0) {
        const total = side.carryLen + (lf - pos);
        if (total > MAX_LINE) {
          this.#invalid++;
        } else {
          chunk.copy(side.carry!, side.carryLen, pos, lf);
          this.#line(side.fromClient, side.carry!, 0, total);
        }
        side.carryLen = 0;
      } else if (lf - pos > MAX_LINE) {
        this.#invalid++;
      } else {
        this.#line(side.fromClient, chunk, pos, lf);
      }
      pos = next;
    }
  }

  /** Copy the start of an unfinished line, or give up on it once it is too long. */
  #keepPartial(side: Side, chunk: Buffer, from: number, to: number): void {
    if (side.skipping) return;
    const length = side.carryLen + (to - from);
    if (length > MAX_LINE) {
      this.#invalid++;
      side.skipping = true;
      side.carryLen = 0;
      return;
    }
    side.carry ??= Buffer.allocUnsafe(MAX_LINE);
    chunk.copy(side.carry, side.carryLen, from, to);
    side.carryLen = length;
  }

  /** Parse buf[start, end): one line without its '\n'. */
  #line(fromClient: boolean, buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === CH_CR) end--;
    if (end - start < MIN_LINE || buf[start + 3] !== CH_SPACE) {
      this.#invalid++;
      return;
    }
    const kind = typeOf(buf[start]!, buf[start + 1]!, buf[start + 2]!);
    if (kind === INVALID || (kind === REQ) !== fromClient) {
      this.#invalid++;
      return;
    }
    let i = start + 4;
    let seq = 0;
    for (; i < end; i++) {
      const c = buf[i]!;
      if (c < CH_0 || c > CH_9) break;
      seq = seq * 10 + (c - CH_0);
    }
    const digits = i - (start + 4);
    if (digits === 0 || (i < end && buf[i] !== CH_SPACE)) {
      this.#invalid++;
      return;
    }
    if (digits > MAX_TRACKED_SEQ_DIGITS) seq = -1;
    if (kind === REQ) {
      this.#req++;
      if (seq >= 0) this.#request(seq);
    } else {
      if (kind === ACK) this.#ack++;
      else this.#nak++;
      if (seq >= 0) this.#response(seq);
    }
  }

  #request(seq: number): void {
    const outstanding = this.#outstanding;
    if (outstanding.has(seq)) return;
    if (outstanding.size >= MAX_OUTSTANDING) {
      // Only reached by a client that sends far more than it gets answered.
      const oldest = outstanding.keys().next().value;
      if (oldest !== undefined) outstanding.delete(oldest);
    }
    outstanding.set(seq, this.#now);
  }

  #response(seq: number): void {
    const sentAt = this.#outstanding.get(seq);
    if (sentAt === undefined) return;
    this.#outstanding.delete(seq);
    this.#onLatency?.(this.#now - sentAt);
  }
}

function typeOf(a: number, b: number, c: number): Kind {
  // 'R','E','Q' / 'A','C','K' / 'N','A','K'
  if (a === 0x52 && b === 0x45 && c === 0x51) return REQ;
  if (c !== 0x4b) return INVALID;
  if (a === 0x41 && b === 0x43) return ACK;
  if (a === 0x4e && b === 0x41) return NAK;
  return INVALID;
}
