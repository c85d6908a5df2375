import type { Clock } from '../clock.js';
import type { ConnectionSummary } from '../channels.js';
import { FooCounters } from './foo.js';
import { LatencyHistogram, WindowedLatency, type Summary } from './histogram.js';

export const LATENCY_KINDS = ['connect', 'ttfb', 'duration', 'shaperWait', 'foo'] as const;
export type LatencyKind = (typeof LATENCY_KINDS)[number];

type Histograms = Record<LatencyKind, WindowedLatency>;

function histograms(now: () => number): Histograms {
  return {
    connect: new WindowedLatency(now),
    ttfb: new WindowedLatency(now),
    duration: new WindowedLatency(now),
    shaperWait: new WindowedLatency(now),
    foo: new WindowedLatency(now),
  };
}

/** The counters that survive a restart (saved about every second). */
export interface SavedCounters {
  version: 1;
  savedAt: string;
  connectionsTotal: number;
  rejected: number;
  byReason: Record<string, number>;
  bytesUp: number;
  bytesDown: number;
  foo: Record<string, number>;
  /** absent in files from before TLS */
  targetTlsFailures?: number;
}

const HISTORY = 300;

/**
 * Everything the proxy counts: connection and byte counters, latency
 * histograms per app and per tier (label sets bounded by the config), Foo
 * counters, and per-tier rate history. Fed from connection events (never per
 * chunk) and read by /stats, /metrics and the signal dumps.
 */
export class Stats {
  readonly byApp = new Map<string, Histograms>();
  readonly byTier = new Map<string, Histograms>();
  connectionsTotal = 0;
  rejected = 0;
  /** failed TLS handshakes with targets (each a failed dial); the clients' are close reason `tls_handshake` */
  targetTlsFailures = 0;
  readonly byReason = new Map<string, number>();
  /** connections refused at accept by the abuse limits, by reason (source_connections, source_rate, global_connections, resource_exhausted) */
  readonly refused = new Map<string, number>();
  /** bytes of closed connections; open ones are added when read */
  closedBytesUp = 0;
  closedBytesDown = 0;
  readonly foo: FooCounters;
  /** per tier: bytes/s each way over the last second, and the last HISTORY seconds */
  readonly tierRates = new Map<string, { down: number; up: number; lastDown: number; lastUp: number; history: { down: number[]; up: number[] } }>();
  readonly historyTimes: number[] = [];

  /** dials of a target that failed, by "app|target" */
  readonly targetFailures = new Map<string, number>();
  /** Every latency recorded, as it is recorded (the Prometheus histograms listen here). */
  onRecord: ((kind: LatencyKind, app: string, tier: string | undefined, ms: number) => void) | null = null;
  readonly #now: () => number;

  constructor(clock: Clock) {
    this.foo = new FooCounters(clock);
    this.#now = () => clock.now();
  }

  #hist(map: Map<string, Histograms>, key: string): Histograms {
    let h = map.get(key);
    if (!h) {
      h = histograms(this.#now);
      map.set(key, h);
    }
    return h;
  }

  record(kind: LatencyKind, app: string, tier: string | undefined, ms: number): void {
    this.#hist(this.byApp, app)[kind].record(ms);
    if (tier !== undefined) this.#hist(this.byTier, tier)[kind].record(ms);
    this.onRecord?.(kind, app, tier, ms);
  }

  targetFailed(app: string, target: string): void {
    const key = `${app}|${target}`;
    this.targetFailures.set(key, (this.targetFailures.get(key) ?? 0) + 1);
  }

  refuse(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  targetTlsFailed(): void {
    this.targetTlsFailures++;
  }

  opened(): void {
    this.connectionsTotal++;
  }

  /** `latency` false: count only, no histograms (observe.latency off). */
  closed(s: ConnectionSummary, shaperWaitMs: number | undefined, latency = true): void {
    this.byReason.set(s.reason, (this.byReason.get(s.reason) ?? 0) + 1);
    if (s.reason === 'rejected') this.rejected++;
    // A quota refusal before any dial is a refusal; an open connection closed by it is not.
    else if (s.reason === 'quota_exceeded' && s.target === undefined) this.refuse('quota_exceeded');
    this.closedBytesUp += s.bytesUp;
    this.closedBytesDown += s.bytesDown;
    if (!latency) return;
    if (s.reason !== 'rejected' && !(s.reason === 'quota_exceeded' && s.target === undefined) && s.reason !== 'no_target' && s.reason !== 'wake_timeout' && s.reason !== 'proxy_protocol' && s.reason !== 'tls_handshake' && s.reason !== 'resource_exhausted' && s.reason !== 'denied') {
      this.record('duration', s.app, s.tier, s.durationMs);
    }
    if (shaperWaitMs !== undefined) this.record('shaperWait', s.app, s.tier, shaperWaitMs);
  }

  /** Drop the histograms of apps and tiers no longer in the config (and free them). */
  prune(apps: ReadonlySet<string>, tiers: ReadonlySet<string>): void {
    for (const [map, keep] of [[this.byApp, apps], [this.byTier, tiers]] as const) {
      for (const [key, h] of map) {
        if (keep.has(key)) continue;
        for (const k of LATENCY_KINDS) h[k].destroy();
        map.delete(key);
      }
    }
    for (const key of this.tierRates.keys()) if (!tiers.has(key)) this.tierRates.delete(key);
  }

  /** One sample per second of each tier's byte counters (the scheduler nodes' totals). */
  sampleTiers(now: number, bytes: Map<string, { down: number; up: number }>, elapsedMs: number): void {
    this.historyTimes.push(Math.round(now / 1000));
    if (this.historyTimes.length > HISTORY) this.historyTimes.shift();
    for (const [tier, b] of bytes) {
      let r = this.tierRates.get(tier);
      if (!r) {
        r = { down: 0, up: 0, lastDown: b.down, lastUp: b.up, history: { down: [], up: [] } };
        this.tierRates.set(tier, r);
      }
      r.down = elapsedMs > 0 ? ((b.down - r.lastDown) * 1000) / elapsedMs : 0;
      r.up = elapsedMs > 0 ? ((b.up - r.lastUp) * 1000) / elapsedMs : 0;
      r.lastDown = b.down;
      r.lastUp = b.up;
      const h = r.history;
      // Tiers that appear later are padded so every series lines up with historyTimes.
      while (h.down.length < this.historyTimes.length - 1) {
        h.down.push(0);
        h.up.push(0);
      }
      h.down.push(Math.round(r.down));
      h.up.push(Math.round(r.up));
      if (h.down.length > HISTORY) {
        h.down.shift();
        h.up.shift();
      }
    }
  }

  latency(map: Map<string, Histograms>, key: string): Partial<Record<LatencyKind, Summary>> {
    const h = map.get(key);
    if (!h) return {};
    const out: Partial<Record<LatencyKind, Summary>> = {};
    for (const k of LATENCY_KINDS) if (h[k].count > 0) out[k] = h[k].summary();
    return out;
  }

  /** All apps merged, per kind (temporary histograms, freed after use). */
  totalLatency(): Partial<Record<LatencyKind, Summary>> {
    const out: Partial<Record<LatencyKind, Summary>> = {};
    for (const k of LATENCY_KINDS) {
      const sum = new LatencyHistogram();
      for (const h of this.byApp.values()) if (h[k].count > 0) h[k].addTo(sum);
      if (sum.count > 0) out[k] = sum.summary();
      sum.destroy();
    }
    return out;
  }

  counters(bytesOpen: { up: number; down: number }): SavedCounters {
    return {
      version: 1,
      savedAt: new Date().toISOString(),
      connectionsTotal: this.connectionsTotal,
      rejected: this.rejected,
      byReason: Object.fromEntries(this.byReason),
      bytesUp: this.closedBytesUp + bytesOpen.up,
      bytesDown: this.closedBytesDown + bytesOpen.down,
      foo: this.foo.toJSON() as unknown as Record<string, number>,
      targetTlsFailures: this.targetTlsFailures,
    };
  }

  /** Continue from saved counters (a restart). Unknown or bad fields are ignored. */
  restore(saved: Partial<SavedCounters>): void {
    const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
    this.connectionsTotal += n(saved.connectionsTotal);
    this.rejected += n(saved.rejected);
    this.targetTlsFailures += n(saved.targetTlsFailures);
    if (saved.byReason && typeof saved.byReason === 'object') {
      for (const [k, v] of Object.entries(saved.byReason)) this.byReason.set(k, (this.byReason.get(k) ?? 0) + n(v));
    }
    this.closedBytesUp += n(saved.bytesUp);
    this.closedBytesDown += n(saved.bytesDown);
    if (saved.foo && typeof saved.foo === 'object') this.foo.restore(saved.foo);
  }

  destroy(): void {
    this.prune(new Set(), new Set());
  }
}
