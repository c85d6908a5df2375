/** Measures over send logs, shared by the scheduler and library tests. */

/** Jain's fairness index: 1 when all equal, 1/n when one takes everything. */
export function jain(xs: number[]): number {
  const s = xs.reduce((a, b) => a + b, 0);
  const q = xs.reduce((a, b) => a + b * b, 0);
  return (s * s) / (xs.length * q);
}

/** Max bytes in any window of `w` ms, from a log of [time, bytes] in time order. */
export function maxInWindow(log: [number, number][], w: number): number {
  let best = 0;
  let sum = 0;
  let j = 0;
  for (let i = 0; i < log.length; i++) {
    sum += log[i]![1];
    while (log[i]![0] - log[j]![0] > w) sum -= log[j++]![1];
    if (sum > best) best = sum;
  }
  return best;
}
