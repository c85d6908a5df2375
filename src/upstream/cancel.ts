/** Cancelling a dial (or a wait for a target) when the client goes away. */

/**
 * What a dial needs of an AbortSignal. A connection passes a DialCancel (an AbortController and its
 * signal cost about 1.5 KB of garbage per connection, most of the garbage opening one made).
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A CancelSignal with one listener at a time (a dial tries one target at a time). */
export class DialCancel implements CancelSignal {
  aborted = false;
  #listener: (() => void) | null = null;

  addEventListener(_type: 'abort', listener: () => void): void {
    this.#listener = listener;
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.#listener === listener) this.#listener = null;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listener = this.#listener;
    this.#listener = null;
    listener?.();
  }
}
