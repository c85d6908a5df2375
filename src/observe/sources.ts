/**
 * What /stats and /metrics read of the running proxy: narrow, read-only, and computed when asked
 * (the data path pays nothing for them). index.ts hands these over; observe never sees the proxy.
 */
import type { ProxyConfig } from '../config/types.js';
import type { CustomerState } from '../shaping/shaper.js';
import type { Target } from '../upstream/target.js';
import type { Connection } from '../server/connection.js';
import type { Stats } from './stats.js';
import type { ConfigFileStats, FleetStats, PlansStats } from './stats-document.js';

export interface ReadingSources {
  /** wall-clock ms when the proxy started */
  readonly startedAt: number;
  readonly stats: Stats;
  /** the effective config */
  config(): ProxyConfig;
  /** the open connections */
  readonly connections: { readonly size: number; forEach(visit: (c: Connection) => void): void };
  /** the shaper's customers (configured and per-address) */
  customers(): Iterable<CustomerState>;
  /** each tier's bytes so far each way */
  tierBytes(): Map<string, { down: number; up: number }>;
  /** an app's targets, in config order */
  targets(app: string): readonly Target[];
  /** each app's targets with their weights in that app */
  apps(): Iterable<[string, readonly Target[]]>;
  /** a connection's current rates (sampled once a second) */
  rates(c: Connection): { up: number; down: number };
  /** plans: the period, the top customers by usage, the schedule windows in force */
  plans(): PlansStats;
  /** the config file in force and the last reload; null: the config did not come from a file */
  configFile(): ConfigFileStats | null;
  /** the fleet's view; null: this instance runs alone */
  fleet(): FleetStats | null;
}

/** What /metrics reads of the fleet (config `cluster`). */
export interface FleetReadings {
  /** this instance reaches the fleet's Redis */
  readonly up: boolean;
  /** Redis commands that failed or timed out */
  readonly errors: number;
  readonly liveMembers: number;
  readonly rebalances: number;
  readonly shares: readonly { scope: string; share: number }[];
}

/** Sum of the bytes the open connections have moved so far. */
export function openBytes(connections: ReadingSources['connections']): { up: number; down: number } {
  let up = 0;
  let down = 0;
  connections.forEach((c) => {
    up += c.bytesUp;
    down += c.bytesDown;
  });
  return { up, down };
}

/** Customers and open connections per tier: the one count /stats, /tiers and /metrics all show. */
export function tierLoad(customers: Iterable<CustomerState>): Map<string, { customers: number; connections: number }> {
  const load = new Map<string, { customers: number; connections: number }>();
  for (const c of customers) {
    let l = load.get(c.tier);
    if (!l) load.set(c.tier, (l = { customers: 0, connections: 0 }));
    l.customers++;
    l.connections += c.connections.size;
  }
  return load;
}
