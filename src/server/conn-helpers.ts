/** Small helpers of connection.ts. */

/**
 * A write found the peer gone after it closed in order: EPIPE is what Linux reports when a reset
 * comes from a peer that had sent its FIN first (CLOSE_WAIT), that is one that closed its socket
 * and then refused the bytes still on their way to it (a download the user stopped). That is an
 * ordinary close, not an error; a reset without a FIN first is ECONNRESET, and stays an error.
 */
export function hungUp(err: Error): boolean {
  return (err as NodeJS.ErrnoException).code === 'EPIPE';
}

export const noop = (): void => {};

/** ms to a hundredth, for the log line. */
export const round = (ms: number): number => Math.round(ms * 100) / 100;

/** "::ffff:1.2.3.4" -> "1.2.3.4", so IPv4 clients look the same on any socket. */
export function normaliseAddress(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/**
 * The first-byte hooks of a connection once its target accepted at `connectedAt`
 * (performance.now()): `measure` gets the ms to the target's first byte (the latency histogram),
 * `sample` least-time's sample: the ms from the client's first byte (or the accept, when the
 * target speaks first) to the target's first byte, the time the target took to answer.
 */
export function firstByteHooks(
  connectedAt: number,
  measure: ((ms: number) => void) | null,
  sample: ((ms: number) => void) | null,
): { up: (() => void) | null; down: (() => void) | null } {
  if (!measure && !sample) return { up: null, down: null };
  let upAt = -1;
  return {
    up: sample
      ? () => {
          if (upAt < 0) upAt = performance.now();
        }
      : null,
    down: () => {
      const now = performance.now();
      measure?.(now - connectedAt);
      sample?.(now - Math.max(connectedAt, upAt));
    },
  };
}
