/**
 * Fleet mode: several instances share customer, tier and global caps through one Redis.
 *
 * Every `rebalanceInterval` each instance runs one TICK script: it reports its demand on every
 * shared cap (how many of its connections want more than they get) and reads back the fleet's
 * demand, then sets its local buckets to `cap × mine / fleet`. Between ticks the local schedulers
 * do all the work; Redis is never on the path of a byte. Admission (maxConnections,
 * connectionRate) is one ADMIT script per new connection (see admission.ts); admin changes go to
 * Redis hashes and are announced on a pub/sub channel (and caught by the tick's version check
 * when a message is missed).
 *
 * When Redis is away or slow, nothing waits for it: buckets keep their last share (or
 * `fallbackShare`), admission counts locally, admin changes apply locally and are pushed when
 * Redis is back.
 */
import { hostname } from 'node:os';
import type { ClusterConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { RuntimeState } from '../config/runtime-state.js';
import type { Demand, Shaper, Wants } from '../shaping/shaper.js';
import type { TierConfig } from '../config/types.js';
import { FleetAdmission, type HeldCount } from './admission.js';
import { RedisLink } from './link.js';
import { CHANGE, TICK } from './scripts.js';

export interface FleetDeps {
  shaper: Shaper;
  log: Logger;
  /** The runtime changes (admin API) in force here. */
  runtime(): RuntimeState;
  /** Another instance changed tiers or customers: make `state` the runtime state here. */
  adopt(state: Pick<RuntimeState, 'tiers' | 'customers'>): void;
  connections(): number;
}

export interface MemberView {
  instance: string;
  self: boolean;
  /** ms since its last heartbeat (as Redis saw it) */
  heartbeatAgeMs: number;
  live: boolean;
  host?: string;
  pid?: number;
  connections?: number;
  startedAt?: string;
}

export interface ShareView {
  scope: string;
  /** this instance's connections that want more than they get */
  demand: number;
  /** the same, summed over the fleet */
  fleetDemand: number;
  /** of `demand`, those held back below this cap by a cap of their own (connection, customer or tier) */
  held: number;
  fleetHeld: number;
  /** fraction of the fleet-wide cap this instance uses */
  share: number;
}

export interface FleetView {
  instance: string;
  redis: { url: string; state: 'up' | 'down'; since: string; errors: number; lastError?: string };
  /** true while Redis is away: shares are the last known ones (or fallbackShare) */
  fallback: boolean;
  rebalanceIntervalMs: number;
  rebalances: number;
  lastRebalance: string | null;
  members: MemberView[];
  shares: ShareView[];
}

type RuntimeHash = 'tiers' | 'customers';

export class Fleet {
  readonly link: RedisLink;
  readonly instance: string;
  readonly keys: {
    members: string;
    info: string;
    version: string;
    channel: string;
    runtime: Record<RuntimeHash, string>;
    /** an instance's demand hash (scope -> wanting connections) */
    demand(instance: string): string;
    admission(customer: string): string;
    rate(customer: string): string;
  };
  /** ticks that reached Redis */
  rebalances = 0;
  #lastRebalance: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #stopped = false;
  readonly #demand = new Map<string, Demand>();
  /** scopes reported with demand by the last tick (their share is set once more when they go idle) */
  #reported = new Map<string, Demand>();
  #shareViews: ShareView[] = [];
  #members: MemberView[] = [];
  #liveMembers = 1;
  readonly #held = new Map<string, HeldCount>();
  /** customers whose count was last reported above 0 */
  #heldReported = new Set<string>();
  /** version of the runtime changes last adopted or written here; -1: not synced yet */
  #version = -1;
  #sync: Promise<void> = Promise.resolve();
  #syncQueued = false;
  /** admin changes made while Redis was away, pushed when it is back */
  readonly #pending = new Map<string, { hash: RuntimeHash; field: string; value: unknown }>();
  readonly #startedAt = new Date().toISOString();
  #duplicateLogged = false;
  #duplicateSeen = 0;

  constructor(
    readonly config: ClusterConfig,
    private readonly deps: FleetDeps,
  ) {
    this.instance = config.instance;
    const p = config.prefix;
    this.keys = {
      members: `${p}members`,
      info: `${p}info`,
      version: `${p}runtime:version`,
      channel: `${p}control`,
      runtime: { tiers: `${p}runtime:tiers`, customers: `${p}runtime:customers` },
      demand: (instance) => `${p}demand:${instance}`,
      admission: (customer) => `${p}admission:${customer}`,
      rate: (customer) => `${p}rate:${customer}`,
    };
    this.link = new RedisLink(config.redis, config.redisTimeout, deps.log.child({ cluster: config.instance }));
    this.link.onChange = (up) => this.#linkChanged(up);
  }

  /** Connects (waiting at most redisTimeout: traffic never waits for Redis) and starts the heartbeat. */
  async start(): Promise<void> {
    this.link.sub.on('message', (_channel: string, message: string) => this.#announced(message));
    await this.link.open();
    // Subscribed once; ioredis subscribes again after every reconnect.
    this.link.sub.subscribe(this.keys.channel).catch(() => {});
    this.#timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.deps.log.error({ error: String(err) }, 'cluster: heartbeat failed'));
    }, this.config.rebalanceInterval);
    this.#timer.unref();
    if (this.link.up) await this.tick();
  }

  /** The admission gate of a customer in a tier, fleet-wide; null when the tier sets no limit. */
  admissionFor(customer: string, tier: TierConfig): FleetAdmission | null {
    if (tier.maxConnections === undefined && tier.connectionRate === undefined) return null;
    return new FleetAdmission(customer, tier, {
      link: this.link,
      instance: this.instance,
      memberTimeout: this.config.memberTimeout,
      keys: this.keys,
      held: (id) => {
        let held = this.#held.get(id);
        if (!held) this.#held.set(id, (held = { count: 0, inflight: 0 }));
        return held;
      },
      fallbackShare: () => this.config.fallbackShare ?? 1 / this.#liveMembers,
      now: () => Date.now(),
    });
  }

  // ---- the heartbeat -------------------------------------------------------------------------------

  /** One exchange with Redis: report demand and counts, set the shares from the fleet's demand. */
  async tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    try {
      const shaper = this.deps.shaper;
      shaper.demand(this.#demand);
      // Scopes with demand are sent; one that just went idle gets its (probe) share once more.
      const pairs: string[] = [];
      for (const d of this.#demand.values()) pairs.push(d.scope.key, `${d.count},${d.cappedCount},${Math.round(d.cappedRate)}`);
      const scopes: Demand[] = [...this.#demand.values()];
      for (const [key, gone] of this.#reported) if (!this.#demand.has(key)) scopes.push({ ...gone, count: 0, cappedCount: 0, cappedRate: 0 });
      const counts: [string, number][] = [];
      const waiting: string[] = [];
      for (const [customer, held] of this.#held) {
        if (held.inflight > 0) {
          waiting.push(customer); // see HeldCount.inflight; the next heartbeat writes it
          continue;
        }
        if (held.count > 0 || this.#heldReported.has(customer)) counts.push([customer, held.count]);
        else this.#held.delete(customer);
      }
      const info = JSON.stringify({ host: hostname(), pid: process.pid, connections: this.deps.connections(), startedAt: this.#startedAt });
      const keys = [this.keys.members, this.keys.info, this.keys.version, this.keys.demand(this.instance), ...counts.map(([c]) => this.keys.admission(c))];
      const args = [this.instance, info, this.config.memberTimeout, this.keys.demand(''), pairs.length / 2, ...pairs, ...counts.map(([, n]) => n)];
      const reply = (await this.link.eval(TICK, keys, args)) as [number, string, (string | number)[], (string | string[])[], string, number] | undefined;
      if (!reply || this.#stopped) return;
      this.#checkUnique(reply[4], reply[5]);
      this.rebalances++;
      this.#lastRebalance = Date.now();
      this.#readMembers(reply[2]);
      shaper.defaultShare = 1 / this.#liveMembers;
      const fleet = new Map<string, Wants>();
      for (const d of scopes) fleet.set(d.scope.key, { count: d.count, cappedCount: d.cappedCount, cappedRate: d.cappedRate });
      const others = reply[3];
      for (let i = 1; i < others.length; i += 2) {
        const fields = others[i] as string[];
        for (let j = 0; j + 1 < fields.length; j += 2) {
          const sum = fleet.get(fields[j]!);
          if (!sum) continue;
          const [count, cappedCount, cappedRate] = fields[j + 1]!.split(',').map(Number);
          sum.count += count || 0;
          sum.cappedCount += cappedCount || 0;
          sum.cappedRate += cappedRate || 0;
        }
      }
      const views: ShareView[] = [];
      this.#reported = new Map();
      for (const d of scopes) {
        const total = fleet.get(d.scope.key)!;
        const share = shareFor(d, total, d.cap, this.#liveMembers);
        shaper.setShare(d.scope, share);
        if (d.count + d.cappedCount > 0) this.#reported.set(d.scope.key, d);
        views.push({ scope: d.scope.key, demand: d.count + d.cappedCount, fleetDemand: total.count + total.cappedCount, held: d.cappedCount, fleetHeld: total.cappedCount, share });
      }
      this.#shareViews = views;
      this.#heldReported = new Set([...counts.filter(([, n]) => n > 0).map(([c]) => c), ...waiting.filter((c) => this.#heldReported.has(c))]);
      if (Number(reply[1]) !== this.#version) this.#queueSync();
    } finally {
      this.#ticking = false;
    }
  }

  /** Two processes under one instance id would overwrite each other's counts: say so, once. */
  #checkUnique(previous: string, ageMs: number): void {
    if (this.#duplicateLogged || previous === '' || ageMs > this.config.memberTimeout) return;
    let other: { pid?: number; host?: string; startedAt?: string } = {};
    try {
      other = JSON.parse(previous) as typeof other;
    } catch {
      return;
    }
    if (other.startedAt === this.#startedAt && other.pid === process.pid && other.host === hostname()) return;
    // Once can be this instance's own predecessor (a restart within memberTimeout); twice is another process.
    if (++this.#duplicateSeen < 2) return;
    this.#duplicateLogged = true;
    this.deps.log.error(
      { instance: this.instance, other: { host: other.host, pid: other.pid, startedAt: other.startedAt } },
      'cluster: another running process uses this instance id; give every instance its own cluster.instance (or leave it out for hostname-pid)',
    );
  }

  #readMembers(flat: (string | number)[]): void {
    const members: MemberView[] = [];
    let live = 0;
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const instance = String(flat[i]);
      const age = Number(flat[i + 1]);
      let info: Partial<MemberView> = {};
      try {
        info = JSON.parse(String(flat[i + 2])) as Partial<MemberView>;
      } catch {
        // an older or foreign instance: shown without its details
      }
      const isLive = age <= this.config.memberTimeout;
      if (isLive) live++;
      members.push({ ...info, instance, self: instance === this.instance, heartbeatAgeMs: age, live: isLive });
    }
    this.#members = members.sort((a, b) => a.instance.localeCompare(b.instance));
    this.#liveMembers = Math.max(1, live);
  }

  #linkChanged(up: boolean): void {
    if (up) {
      this.#queueSync();
      return;
    }
    // Redis is away: keep the last shares, or use fallbackShare for everything.
    if (this.config.fallbackShare !== null) this.deps.shaper.setAllShares(this.config.fallbackShare);
  }

  // ---- admin changes -----------------------------------------------------------------------------

  /**
   * An admin change made here, for the whole fleet. `value` undefined removes the entry. Returns
   * false when Redis is away: the change is in force here and is pushed once Redis is back.
   */
  async publish(hash: RuntimeHash, field: string, value: unknown): Promise<boolean> {
    const version = await this.#write(hash, field, value);
    if (version !== undefined) return true;
    this.#pending.set(`${hash}\0${field}`, { hash, field, value });
    this.deps.log.warn({ [hash]: field }, 'cluster: redis unreachable; the change is in force here and goes to the fleet when redis is back');
    return false;
  }

  async #write(hash: RuntimeHash, field: string, value: unknown): Promise<number | undefined> {
    const reply = await this.link.eval(CHANGE, [this.keys.runtime[hash], this.keys.version], [
      field,
      value === undefined ? '' : JSON.stringify(value),
      this.keys.channel,
      this.instance,
    ]);
    if (reply === undefined) return undefined;
    const version = Number(reply);
    // Only when no other change slipped in between; otherwise the next sync reads them all.
    if (version === this.#version + 1) this.#version = version;
    return version;
  }

  #announced(message: string): void {
    const [version, from] = message.split(' ');
    if (from !== this.instance && Number(version) !== this.#version) this.#queueSync();
  }

  /** One sync at a time; a sync asked for while one runs runs once more after it. */
  #queueSync(): void {
    if (this.#syncQueued || this.#stopped) return;
    this.#syncQueued = true;
    this.#sync = this.#sync.then(async () => {
      this.#syncQueued = false;
      await this.#syncRuntime().catch((err: unknown) => this.deps.log.warn({ error: String(err) }, 'cluster: could not read the fleet\'s runtime changes'));
    });
  }

  /** Pushes changes made while Redis was away (seeding an empty Redis first), then adopts the fleet's state. */
  async #syncRuntime(): Promise<void> {
    const k = this.keys;
    const version = await this.link.run((r) => r.get(k.version));
    if (version === undefined) return;
    if (version === null) await this.#seed();
    for (const [key, change] of this.#pending) {
      if ((await this.#write(change.hash, change.field, change.value)) === undefined) return;
      this.#pending.delete(key);
    }
    const read = await this.link.run((r) => r.multi().get(k.version).hgetall(k.runtime.tiers).hgetall(k.runtime.customers).exec());
    if (!read) return;
    const [[, v], [, tiers], [, customers]] = read as [[unknown, string | null], [unknown, Record<string, string>], [unknown, Record<string, string>]];
    const state = { tiers: parseEntries(tiers) as Record<string, unknown>, customers: parseEntries(customers) as RuntimeState['customers'] };
    const here = this.deps.runtime();
    if (JSON.stringify(sorted(state.tiers)) !== JSON.stringify(sorted(here.tiers)) || JSON.stringify(sorted(state.customers)) !== JSON.stringify(sorted(here.customers))) {
      this.deps.adopt(state);
      this.deps.log.info({ version: Number(v ?? 0) }, 'cluster: tiers and customers updated from the fleet');
    }
    this.#version = Number(v ?? 0);
  }

  /** An empty Redis (first start, or it lost its data): this instance's runtime state becomes the fleet's. */
  async #seed(): Promise<void> {
    const state = this.deps.runtime();
    const k = this.keys;
    await this.link.run(async (r) => {
      const m = r.multi();
      for (const [name, tier] of Object.entries(state.tiers)) m.hsetnx(k.runtime.tiers, name, JSON.stringify(tier));
      for (const [id, customer] of Object.entries(state.customers)) m.hsetnx(k.runtime.customers, id, JSON.stringify(customer));
      m.setnx(k.version, 1);
      return m.exec();
    });
  }

  // ---- view, stop --------------------------------------------------------------------------------

  view(): FleetView {
    const link = this.link;
    return {
      instance: this.instance,
      redis: {
        url: redactUrl(this.config.redis),
        state: link.up ? 'up' : 'down',
        since: new Date(link.since).toISOString(),
        errors: link.errors,
        ...(link.up || !link.lastError ? {} : { lastError: link.lastError }),
      },
      fallback: !link.up,
      rebalanceIntervalMs: this.config.rebalanceInterval,
      rebalances: this.rebalances,
      lastRebalance: this.#lastRebalance === null ? null : new Date(this.#lastRebalance).toISOString(),
      members: this.#members,
      shares: this.#shareViews,
    };
  }

  /** Members seen live at the last heartbeat (1 while alone or Redis is away from the start). */
  get liveMembers(): number {
    return this.#liveMembers;
  }

  get shares(): readonly ShareView[] {
    return this.#shareViews;
  }

  /** Leaves the fleet: the others take over this instance's shares at their next tick. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#sync;
    if (this.link.up) {
      const k = this.keys;
      await this.link.run((r) => {
        const m = r.multi().hdel(k.members, this.instance).hdel(k.info, this.instance).del(k.demand(this.instance));
        for (const customer of this.#held.keys()) m.hdel(k.admission(customer), this.instance);
        return m.exec();
      });
    }
    await this.link.close();
  }
}

/**
 * This instance's fraction of a shared cap of `cap` bytes/s, from its demand and the fleet's
 * (its own included). Connections held back by a cap of their own keep what they take; the rest
 * of the cap is split by the connections free to take any share, so each of those gets the same
 * across the fleet (max-min fairness one level deep). When the held ones alone fill the cap, it
 * is split by all wanting connections. An instance with no demand keeps a probe share (what one
 * more free connection would get), so a new connection starts at once, overshooting by at most
 * that for one tick; when nobody wants more, the live members split the rest evenly.
 */
export function shareFor(mine: Wants, fleet: Wants, cap: number, liveMembers: number): number {
  const live = Math.max(1, liveMembers);
  const wanting = mine.count + mine.cappedCount;
  const fleetWanting = Math.max(fleet.count + fleet.cappedCount, wanting);
  if (!(cap > 0) || !Number.isFinite(cap)) return 1;
  const heldRate = Math.max(fleet.cappedRate, mine.cappedRate) * HELD_HEADROOM;
  if (heldRate >= cap) return wanting > 0 ? wanting / fleetWanting : fleetWanting > 0 ? 1 / (fleetWanting + 1) : 1 / live;
  const free = cap - heldRate;
  const freeCount = Math.max(fleet.count, mine.count);
  let rate: number;
  if (wanting > 0) rate = mine.cappedRate * HELD_HEADROOM + (freeCount > 0 ? (free * mine.count) / freeCount : free / live);
  else rate = freeCount > 0 ? free / (freeCount + 1) : free / live;
  return Math.min(1, rate / cap);
}

/**
 * Connections held by caps of their own get this much more than those caps add up to, so the
 * shared bucket never becomes what holds them back (they would then count as free, and the
 * split would swing between the two readings from one heartbeat to the next).
 */
export const HELD_HEADROOM = 1.1;

function parseEntries(raw: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, json] of Object.entries(raw)) {
    try {
      out[key] = JSON.parse(json);
    } catch {
      // a value no instance wrote: left out (the runtime overlay would report it anyway)
    }
  }
  return out;
}

function sorted(map: Record<string, unknown>): [string, unknown][] {
  return Object.entries(map).sort(([a], [b]) => a.localeCompare(b));
}

/** The URL without its password, for /status and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
