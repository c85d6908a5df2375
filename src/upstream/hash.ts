/**
 * 32-bit FNV-1a over the string's UTF-16 code units from `start`, finished
 * with murmur3's fmix32. FNV-1a alone mixes the high bits poorly for short,
 * similar keys (IP addresses, "host:port#7"); the finalizer spreads them over
 * the whole ring. Taking `start` lets callers skip a prefix without slicing.
 */
export function hash32(s: string, start = 0): number {
  let h = 0x811c9dc5;
  for (let i = start; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
