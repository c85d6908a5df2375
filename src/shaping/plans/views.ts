/**
 * Usage as the admin API shows it (`GET /usage`, `GET /usage/:customer`): a customer's bytes in
 * the current period, its quota and what is left of it, and its last closed period; from memory,
 * or from the usage store for customers not in memory. Listed by shard, then id, so a page
 * (`after`, `limit`) reads only the shards it needs.
 */
import { isoInZone, type Span } from '../../config/calendar.js';
import { WEEKDAYS } from '../../config/schedule.js';
import type { ShapingConfig } from '../../config/types.js';
import type { CustomerState } from '../tree.js';
import { shardOf, SHARDS, type ClosedPeriod, type StoredUsage } from './usage-store.js';
import { UsageBook, type Usage } from './usage.js';

export interface PeriodView {
  start: string;
  end: string;
}

export interface UsageView {
  customer: string;
  /** the customer's own tier */
  tier: string;
  /** the tier it is in now: a quota's `then` while it is over the quota */
  inTier: string;
  period: PeriodView;
  timezone: string;
  up: number;
  down: number;
  quota: { bytes: number; direction: 'down' | 'up' | 'both'; then: string | null } | null;
  /** quota bytes left in the period (0 once over it); null: no quota */
  remaining: number | null;
  exceeded: boolean;
  connections: number;
  last: (PeriodView & { tier: string; up: number; down: number }) | null;
}

export interface UsagePage {
  customers: UsageView[];
  /** pass as `after` for the next page; null: this was the last */
  next: string | null;
}

/** What the views read of the plans. */
export interface ViewSource {
  config: ShapingConfig | undefined;
  zone: string;
  period: Span;
  records: ReadonlyMap<string, Usage>;
  customers: ReadonlyMap<string, CustomerState>;
  /** the shard's stored records sorted by id (none without a store) */
  shard(shard: number): Promise<[string, StoredUsage][]>;
  get(id: string): Promise<StoredUsage | undefined>;
}

/** One customer's usage, from memory or the store; undefined: nothing counted this period or the last. */
export async function usageOf(src: ViewSource, id: string): Promise<UsageView | undefined> {
  const u = src.records.get(id);
  if (u) return fromMemory(src, u);
  const stored = await src.get(id);
  return stored ? fromStored(src, id, stored) : undefined;
}

/** Up to `limit` customers after `after` (shard, then id order). */
export async function usagePage(src: ViewSource, after: string | undefined, limit: number): Promise<UsagePage> {
  const first = after === undefined ? 0 : shardOf(after);
  const memory = new Map<number, Usage[]>();
  for (const u of src.records.values()) {
    const s = shardOf(u.id);
    if (s < first) continue;
    const list = memory.get(s);
    if (list) list.push(u);
    else memory.set(s, [u]);
  }
  const out: UsageView[] = [];
  for (let s = first; s < SHARDS && out.length < limit; s++) {
    const inMemory = memory.get(s) ?? [];
    const rows = new Map<string, UsageView | StoredUsage>((await src.shard(s)).map(([id, rec]) => [id, rec]));
    for (const u of inMemory) rows.set(u.id, fromMemory(src, u));
    const ids = [...rows.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const id of ids) {
      if (s === first && after !== undefined && id <= after) continue;
      const row = rows.get(id)!;
      out.push('customer' in row ? row : fromStored(src, id, row));
      if (out.length === limit) break;
    }
  }
  return { customers: out, next: out.length === limit ? out[out.length - 1]!.customer : null };
}

function fromMemory(src: ViewSource, u: Usage): UsageView {
  const cust = src.customers.get(u.id);
  return view(src, u.id, cust?.home ?? u.tier, cust, UsageBook.upNow(u), UsageBook.downNow(u), u.last);
}

function fromStored(src: ViewSource, id: string, rec: StoredUsage): UsageView {
  const cust = src.customers.get(id);
  const tier = cust?.home ?? src.config?.customers.find((c) => c.id === id)?.tier ?? rec.tier;
  // A stored period that has ended (not yet closed by the sweep) is the last one; this one is empty.
  if (rec.start < src.period.start) return view(src, id, tier, cust, 0, 0, { tier: rec.tier, start: rec.start, end: rec.end, up: rec.up, down: rec.down });
  return view(src, id, tier, cust, rec.up, rec.down, rec.last);
}

function view(src: ViewSource, id: string, tier: string, cust: CustomerState | undefined, up: number, down: number, last: ClosedPeriod | null): UsageView {
  const zone = src.zone;
  const quota = src.config?.tiers[tier]?.quota ?? null;
  const used = quota ? (quota.direction === 'down' ? down : quota.direction === 'up' ? up : up + down) : 0;
  return {
    customer: id,
    tier,
    inTier: cust?.tier ?? tier,
    period: { start: isoInZone(src.period.start, zone), end: isoInZone(src.period.end, zone) },
    timezone: zone,
    up,
    down,
    quota: quota ? { bytes: quota.bytes, direction: quota.direction, then: quota.then } : null,
    remaining: quota ? Math.max(0, quota.bytes - used) : null,
    exceeded: quota !== null && used >= quota.bytes,
    connections: cust?.connections.size ?? 0,
    last: last ? { tier: last.tier, start: isoInZone(last.start, zone), end: isoInZone(last.end, zone), up: last.up, down: last.down } : null,
  };
}

export interface PlansSummary {
  period: { start: string; end: string; timezone: string } | null;
  top: { customer: string; tier: string; inTier: string; down: number; up: number; quotaBytes: number | null; remaining: number | null; exceeded: boolean }[];
  windows: { tier: string; active: number; days: string | null; from: string | null; to: string | null }[];
}

/** The customers in memory with the most bytes (up to `limit`, most first), the period, the windows in force. */
export function summaryOf(src: ViewSource | null, config: ShapingConfig | undefined, active: ReadonlyMap<string, number>, zone: string, limit: number): PlansSummary {
  const windows = [...active].map(([tier, i]) => {
    const w = i >= 0 ? config?.tiers[tier]?.schedule?.[i] : undefined;
    return { tier, active: i, days: w ? w.days.map((d) => WEEKDAYS[d]).join(',') : null, from: w ? clock(w.from) : null, to: w ? clock(w.to) : null };
  });
  if (!src) return { period: null, top: [], windows };
  // A running selection of the largest: one pass, no sort of every record.
  const best: [number, Usage][] = [];
  for (const u of src.records.values()) {
    const total = UsageBook.upNow(u) + UsageBook.downNow(u);
    if (best.length === limit && total <= best[limit - 1]![0]) continue;
    let i = best.length === limit ? limit - 1 : best.length;
    best[i] = [total, u];
    while (i > 0 && best[i - 1]![0] < total) {
      [best[i - 1], best[i]] = [best[i]!, best[i - 1]!];
      i--;
    }
  }
  const top = best.map(([, u]) => {
    const v = fromMemory(src, u);
    return { customer: v.customer, tier: v.tier, inTier: v.inTier, down: v.down, up: v.up, quotaBytes: v.quota?.bytes ?? null, remaining: v.remaining, exceeded: v.exceeded };
  });
  return { period: { start: isoInZone(src.period.start, zone), end: isoInZone(src.period.end, zone), timezone: zone }, top, windows };
}

const clock = (minutes: number): string => `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
