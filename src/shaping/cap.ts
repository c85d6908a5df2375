/**
 * The library's engine and shared caps (exported from the package root by src/lib.ts): an engine
 * is one scheduler on one clock; a SharedCap is a node of its tree with a token bucket, shared
 * fairly by every ShapingStream (stream.ts) and cap under it.
 */
import { realClock, type Clock } from '../clock.js';
import { ProxyError, isProxyError } from '../errors.js';
import { parseRate, parseSize } from '../config/units.js';
import { MIN_SEND, burstFor } from './grants.js';
import { Scheduler, SchedNode } from './scheduler.js';

/** A rate: bytes/s as a number, or the config's units ("1MiB/s", "100mbit", "unlimited"). */
export type RateInput = number | string;
/** A size: bytes as a number, or the config's units ("64KiB", "1MB"). */
export type SizeInput = number | string;

export interface ShapingEngineOptions {
  /** The clock the buckets and the one timer run on (default: the real clock; tests pass a ManualClock). */
  clock?: Clock;
}

let schedulerOf: (engine: ShapingEngine) => Scheduler;
let defaultEngine: ShapingEngine | undefined;

/**
 * One hierarchical deficit round-robin scheduler on one clock, with one timer: every SharedCap and
 * ShapingStream of an engine is a node of its tree. Most programs never make one: streams and caps
 * use the default engine (the real clock). Tests pass their own with a ManualClock.
 */
export class ShapingEngine {
  readonly clock: Clock;
  readonly #scheduler: Scheduler;

  static {
    schedulerOf = (engine) => engine.#scheduler;
  }

  constructor(options: ShapingEngineOptions = {}) {
    this.clock = options.clock ?? realClock;
    this.#scheduler = new Scheduler(this.clock, 'engine');
  }

  /** The engine of streams and caps created without one (real clock). */
  static get default(): ShapingEngine {
    return (defaultEngine ??= new ShapingEngine());
  }

  /** Cancel the engine's timer (waiting bytes stay waiting until something wakes it again). */
  stop(): void {
    this.#scheduler.stop();
  }
}

/** The engine's scheduler (for stream.ts; not part of the public API). */
export function engineScheduler(engine: ShapingEngine): Scheduler {
  return schedulerOf(engine);
}

/** A rate and a bucket size, parsed; `explicit`: the burst was given (else it follows the rate). */
export interface Limits {
  rate: number;
  burst: number;
  explicit: boolean;
}

/**
 * Parse a rate and an optional burst for `where` (e.g. "ShapingStream rate"): SHAPER_ERR_UNIT
 * naming the option when one is not a rate or size. The default burst is burstFor(rate) with no
 * rtt: the larger of 32 KiB and 10 ms of the rate. A burst is at least MIN_SEND (4 KiB), the
 * smallest grant the scheduler makes.
 */
export function parseLimits(where: string, rate: RateInput | undefined, burst: SizeInput | undefined, keep?: Limits): Limits {
  const r = rate === undefined ? Infinity : withName(`${where} rate`, () => parseRate(rate));
  if (burst === undefined) {
    const b = keep?.explicit ? keep.burst : burstFor(Number.isFinite(r) ? r : 0, 0);
    return { rate: r, burst: b, explicit: keep?.explicit ?? false };
  }
  const b = withName(`${where} burst`, () => parseSize(burst));
  if (b < MIN_SEND) throw new ProxyError('SHAPER_ERR_UNIT', `${where} burst: ${JSON.stringify(burst)} is below ${MIN_SEND} bytes (4KiB), the smallest grant`);
  return { rate: r, burst: b, explicit: true };
}

function withName<T>(where: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (isProxyError(err)) throw new ProxyError(err.code, `${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

export interface SharedCapOptions {
  /** bytes/s shared by everything under the cap ("2MiB/s", "100mbit", a number; "unlimited": fairness only). */
  rate: RateInput;
  /** bucket size: the most it passes at once after a quiet spell (default: 32 KiB or 10 ms of the rate, whichever is more) */
  burst?: SizeInput;
  /** the cap above this one (e.g. a tier's above a customer's) */
  parent?: SharedCap;
  /** default: the parent's engine, else the default engine */
  engine?: ShapingEngine;
  /** for error messages (default "cap-N") */
  name?: string;
}

let capNodeOf: (cap: SharedCap) => SchedNode;
let chain: (caps: readonly SharedCap[], where: string) => void;
let capCount = 0;

/**
 * A rate shared by every ShapingStream (and SharedCap) under it, in max-min fair shares: one that
 * wants less than its share leaves the rest to the others. Caps form a tree: each has at most one
 * parent, given as `parent` or by a stream's `caps` chain ([customerCap, tierCap] puts customerCap
 * under tierCap).
 */
export class SharedCap {
  readonly name: string;
  readonly engine: ShapingEngine;
  readonly #node: SchedNode;
  #parent: SharedCap | null = null;
  #limits: Limits;

  static {
    capNodeOf = (cap) => cap.#node;
    chain = (caps, where) => SharedCap.#chain(caps, where);
  }

  constructor(options: SharedCapOptions) {
    this.name = options?.name ?? `cap-${++capCount}`;
    if (options?.rate === undefined) {
      throw new ProxyError('SHAPER_ERR_UNIT', `SharedCap ${this.name} rate: missing (use bytes/s as a number, "2MiB/s", "100mbit" or "unlimited")`);
    }
    this.#limits = parseLimits(`SharedCap ${this.name}`, options.rate, options.burst);
    this.engine = options.engine ?? options.parent?.engine ?? ShapingEngine.default;
    this.#node = new SchedNode(`cap:${this.name}`);
    const scheduler = schedulerOf(this.engine);
    scheduler.setLimits(this.#node, this.#limits.rate, this.#limits.burst);
    scheduler.attach(this.#node, scheduler.root);
    if (options.parent !== undefined) {
      if (!(options.parent instanceof SharedCap)) throw optionsError(`SharedCap ${this.name} parent: not a SharedCap`);
      SharedCap.#chain([this, options.parent], `SharedCap ${this.name} parent`);
    }
  }

  /** bytes/s (Infinity: unlimited) */
  get rate(): number {
    return this.#limits.rate;
  }

  /** bucket size in bytes */
  get burst(): number {
    return this.#limits.burst;
  }

  get parent(): SharedCap | null {
    return this.#parent;
  }

  /** Bytes passed under this cap so far. */
  get bytes(): number {
    return this.#node.bytes;
  }

  /**
   * Change the rate (and the burst) live: the streams under it follow on the scheduler's next
   * pass. Without `burst`, a burst given before is kept, else the default for the new rate.
   */
  setRate(rate: RateInput, burst?: SizeInput): void {
    this.#limits = parseLimits(`SharedCap ${this.name}`, rate, burst, this.#limits);
    schedulerOf(this.engine).setLimits(this.#node, this.#limits.rate, this.#limits.burst);
  }

  /**
   * Link `caps` nearest first, each under the next (a stream's chain; `parent` is a chain of two).
   * A cap already under the next one (or under a cap under it) stays where it is; one under a
   * different parent, or a link that would close a loop, is a SHAPER_ERR_SHAPING_OPTIONS error.
   * Every link is checked before any is made.
   */
  static #chain(caps: readonly SharedCap[], where: string): void {
    if (new Set(caps).size !== caps.length) throw optionsError(`${where}: a cap appears twice in the chain`);
    const pending = new Map<SharedCap, SharedCap>();
    const parentOf = (c: SharedCap): SharedCap | null => pending.get(c) ?? c.#parent;
    for (let i = 0; i + 1 < caps.length; i++) {
      const child = caps[i]!;
      const parent = caps[i + 1]!;
      if (parent.engine !== child.engine) throw optionsError(`${where}: SharedCap ${child.name} and ${parent.name} belong to different engines`);
      let above = false;
      for (let p = parentOf(child); p && !above; p = parentOf(p)) above = p === parent;
      if (above) continue;
      const current = parentOf(child);
      if (current) {
        throw optionsError(`${where}: SharedCap ${child.name} is already under ${current.name}, so it cannot go under ${parent.name} too (each cap has one parent)`);
      }
      for (let p: SharedCap | null = parent; p; p = parentOf(p)) {
        if (p === child) throw optionsError(`${where}: SharedCap ${child.name} cannot go under ${parent.name}, which is under it (caps form a tree)`);
      }
      pending.set(child, parent);
    }
    for (const [child, parent] of pending) {
      child.#parent = parent;
      schedulerOf(child.engine).attach(child.#node, parent.#node);
    }
  }
}

/** A cap's scheduler node (for stream.ts; not part of the public API). */
export function capNode(cap: SharedCap): SchedNode {
  return capNodeOf(cap);
}

/** Link a stream's caps, nearest first (for stream.ts; see SharedCap.#chain). */
export function chainCaps(caps: readonly SharedCap[], where: string): void {
  chain(caps, where);
}

export function optionsError(message: string): ProxyError {
  return new ProxyError('SHAPER_ERR_SHAPING_OPTIONS', message);
}
