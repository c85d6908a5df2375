/**
 * Shared message-rate limiter for the connections of one port (`--shape-of rate`): the engine's
 * tick adds credit at the current rate; a send takes one credit or waits for the next tick.
 * Unlimited when no rate is set, so the closed loop runs as fast as the replies come back.
 */
export class Pacer {
  #credit = 0;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(readonly limited: boolean) {}

  /** Resolves when a message may go (at once when unlimited or in credit). */
  take(): Promise<void> | undefined {
    if (!this.limited || this.#closed) return undefined;
    if (this.#credit >= 1 && this.#waiters.length === 0) {
      this.#credit -= 1;
      return undefined;
    }
    return new Promise((r) => this.#waiters.push(r));
  }

  /** Add `rate * seconds` credit (capped at a tenth of a second's worth, no bursts) and wake waiters. */
  refill(rate: number, seconds: number): void {
    if (!this.limited) return;
    this.#credit = Math.min(this.#credit + rate * seconds, Math.max(1, rate * 0.1) + this.#waiters.length);
    while (this.#credit >= 1 && this.#waiters.length) {
      this.#credit -= 1;
      this.#waiters.shift()!();
    }
  }

  /** Release every waiter (the run is over). */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w();
  }
}
