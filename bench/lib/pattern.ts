/** Bytes that differ by position (a 32-bit LCG, 4 bytes a step), so a byte lost, added or moved changes their hash. */
export function lcgBytes(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.alloc(Math.ceil(n / 4) * 4);
  let x = seed >>> 0;
  for (let i = 0; i < out.length; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out.writeUInt32LE(x, i);
  }
  return out.subarray(0, n);
}
