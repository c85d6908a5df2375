import type { Balancer, PickContext } from './balancer.js';
import { hash32 } from './hash.js';
import type { Target } from './target.js';

/** Ring points per unit of weight; 160 keeps the spread within a few percent. */
const POINTS_PER_WEIGHT = 160;
const MAPPED_V4_PREFIX = '::ffff:';

/**
 * Where the address proper starts: IPv4-mapped IPv6 ("::ffff:1.2.3.4", any
 * case) hashes as the plain IPv4 address. Compares in place; runs per pick.
 */
function keyStart(address: string): number {
  const n = MAPPED_V4_PREFIX.length;
  if (address.length <= n || address.indexOf('.', n) === -1) return 0;
  for (let i = 0; i < n; i++) {
    // | 0x20 lowercases ASCII letters and leaves ':' as it is.
    if ((address.charCodeAt(i) | 0x20) !== MAPPED_V4_PREFIX.charCodeAt(i)) return 0;
  }
  return n;
}

/**
 * Consistent hashing of the client address onto a ring of virtual nodes.
 * The same client keeps its target while the set is unchanged; removing a
 * target, or leaving it out of the candidates while it is unhealthy, moves
 * only that target's clients, to the next target clockwise.
 */
export class IpHashBalancer implements Balancer {
  readonly kind = 'ip-hash';
  /** Ring point hashes, ascending. */
  private points = new Uint32Array(0);
  /** owners[i]: index into `targets` of the target owning points[i]. */
  private owners = new Uint32Array(0);
  private targets: readonly Target[] = [];
  private index = new Map<Target, number>();
  /** seen[t] === stamp marks target t as a candidate of the current pick. */
  private seen = new Uint32Array(0);
  private stamp = 0;

  setTargets(targets: readonly Target[], weights?: readonly number[]): void {
    const ring: { hash: number; owner: number; address: string }[] = [];
    targets.forEach((t, owner) => {
      const w = weights?.[owner] ?? 1;
      const n = Math.max(1, Math.round(POINTS_PER_WEIGHT * (w > 0 ? w : 1)));
      for (let i = 0; i < n; i++) ring.push({ hash: hash32(`${t.address}#${i}`), owner, address: t.address });
    });
    // Colliding points are ordered by address, not config position, so a
    // reload that reorders or removes targets cannot move other clients.
    ring.sort((a, b) => a.hash - b.hash || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));

    this.points = Uint32Array.from(ring, (p) => p.hash);
    this.owners = Uint32Array.from(ring, (p) => p.owner);
    this.targets = targets;
    this.index = new Map(targets.map((t, i) => [t, i]));
    this.seen = new Uint32Array(targets.length);
    this.stamp = 0;
  }

  pick(candidates: readonly Target[], ctx: PickContext): Target {
    const address = ctx.clientAddress;
    const h = hash32(address, keyStart(address));
    const points = this.points;
    const n = points.length;
    if (n === 0) return candidates[h % candidates.length]!;

    this.markCandidates(candidates);

    // First point >= h; past the last point the ring wraps to 0.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    for (let step = 0, i = lo; step < n; step++, i++) {
      if (i === n) i = 0;
      const owner = this.owners[i]!;
      if (this.seen[owner] === this.stamp) return this.targets[owner]!;
    }
    // No candidate is on the ring (setTargets was not given them): still stable per client.
    return candidates[h % candidates.length]!;
  }

  private markCandidates(candidates: readonly Target[]): void {
    if (++this.stamp === 0xffffffff) {
      this.seen.fill(0);
      this.stamp = 1;
    }
    for (let i = 0; i < candidates.length; i++) {
      const idx = this.index.get(candidates[i]!);
      if (idx !== undefined) this.seen[idx] = this.stamp;
    }
  }
}
