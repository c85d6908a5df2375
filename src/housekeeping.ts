/**
 * The proxy's periodic chores (the idle sweep of connections, forgetting per-address customers
 * that left, ...) on ONE timer of the injected clock: each chore says how often it runs, the
 * timer fires for the earliest one due and runs every chore that is due then. Tests move a
 * ManualClock and see the chores run; nothing here reads the wall clock.
 */
import type { Clock, Timer } from './clock.js';

export interface Chore {
  readonly name: string;
  /** Run every `ms` from now on (0 or less: stop running it). */
  every(ms: number): void;
  cancel(): void;
}

interface Entry {
  name: string;
  everyMs: number;
  dueAt: number;
  run: (now: number) => void;
}

export class Housekeeping {
  readonly #clock: Clock;
  readonly #entries = new Set<Entry>();
  readonly #onError: (chore: string, err: unknown) => void;
  #timer: Timer | undefined;
  #timerAt = Infinity;
  #stopped = false;

  constructor(clock: Clock, onError: (chore: string, err: unknown) => void = () => {}) {
    this.#clock = clock;
    this.#onError = onError;
  }

  /** Run `run(now)` every `everyMs` (first run one period from now). */
  add(name: string, everyMs: number, run: (now: number) => void): Chore {
    const entry: Entry = { name, everyMs, dueAt: this.#clock.now() + everyMs, run };
    if (everyMs > 0) this.#entries.add(entry);
    this.#arm();
    return {
      name,
      every: (ms: number) => {
        if (ms === entry.everyMs && this.#entries.has(entry)) return;
        entry.everyMs = ms;
        entry.dueAt = this.#clock.now() + ms;
        if (ms > 0) this.#entries.add(entry);
        else this.#entries.delete(entry);
        this.#rearm();
      },
      cancel: () => {
        this.#entries.delete(entry);
        this.#rearm();
      },
    };
  }

  /** Chores registered and running. */
  get size(): number {
    return this.#entries.size;
  }

  stop(): void {
    this.#stopped = true;
    this.#entries.clear();
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    for (const e of this.#entries) {
      if (e.dueAt > now) continue;
      // Next run a whole period after this one (a late timer does not make chores bunch up).
      e.dueAt = now + e.everyMs;
      try {
        e.run(now);
      } catch (err) {
        this.#onError(e.name, err);
      }
    }
    this.#arm();
  };

  #rearm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#arm();
  }

  #arm(): void {
    if (this.#stopped) return;
    let at = Infinity;
    for (const e of this.#entries) if (e.dueAt < at) at = e.dueAt;
    if (at === Infinity || at >= this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    // Housekeeping alone never keeps the process alive.
    this.#timer = this.#clock.setTimer(Math.max(0, at - this.#clock.now()), this.#fire, { unref: true });
  }
}
