/**
 * Fleet mode: several instances share customer, tier and global caps through one Redis.
 *
 * Every `rebalanceInterval` each instance runs one TICK script: it reports its demand on every
 * shared cap (how many of its connections want more than they get) and reads back the fleet's
 * demand, then sets its local buckets to `cap × mine / fleet` (shares.ts). Between ticks the
 * local schedulers do all the work; Redis is never on the path of a byte. Admission
 * (maxConnections, connectionRate) is one ADMIT script per new connection (admission.ts); admin
 * changes go to Redis hashes and are announced on a pub/sub channel, and caught by the tick's
 * version check when a message is missed (runtime-sync.ts).
 *
 * When Redis is away or slow, nothing waits for it: buckets keep their last share (or
 * `fallbackShare`), admission counts locally, admin changes apply locally and are pushed when
 * Redis is back.
 */
import type { ClusterConfig, TierConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { FleetAdmission, HeldCounts } from './admission.js';
import { fleetKeys, type FleetKeys, type RuntimeHash } from './keys.js';
import { RedisLink, redactUrl } from './link.js';
import { Members, type MemberView } from './members.js';
import { RuntimeSync, type SharedRuntime } from './runtime-sync.js';
import { TICK } from './scripts.js';
import { DemandExchange, type SharedCaps, type ShareView } from './shares.js';

export { HELD_HEADROOM, shareFor, type SharedCaps, type ShareView } from './shares.js';
export type { MemberView } from './members.js';
export { redactUrl } from './link.js';

export interface FleetDeps {
  log: Logger;
  /** The runtime changes (admin API) in force here. */
  runtime(): SharedRuntime;
  /** Another instance changed tiers or customers: make `state` the runtime state here. */
  adopt(state: SharedRuntime): void;
  /** Connections open here, for the members' view. */
  connections(): number;
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

/** The TICK script's reply (see scripts.ts). */
type TickReply = [now: number, version: string, members: (string | number)[], others: (string | string[])[], previous: string, previousAgeMs: number];

export class Fleet {
  readonly link: RedisLink;
  readonly instance: string;
  readonly keys: FleetKeys;
  /** ticks that reached Redis */
  rebalances = 0;
  #lastRebalance: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #stopped = false;
  readonly #exchange = new DemandExchange();
  readonly #members: Members;
  readonly #held = new HeldCounts();
  readonly #sync: RuntimeSync;

  #shaper: SharedCaps | undefined;

  constructor(
    readonly config: ClusterConfig,
    private readonly deps: FleetDeps,
  ) {
    this.instance = config.instance;
    this.keys = fleetKeys(config.prefix);
    this.link = new RedisLink(config.redis, config.redisTimeout, deps.log.child({ cluster: config.instance }));
    this.link.onChange = (up) => this.#linkChanged(up);
    this.#members = new Members(this.instance, config.memberTimeout, deps.log);
    this.#sync = new RuntimeSync({
      link: this.link,
      keys: this.keys,
      instance: this.instance,
      log: deps.log,
      runtime: () => deps.runtime(),
      adopt: (state) => deps.adopt(state),
    });
  }

  /**
   * Connects (waiting at most redisTimeout: traffic never waits for Redis) and starts the heartbeat,
   * which shares `shaper`'s caps. (The shaper is built after the fleet: its customers' admission
   * gates come from admissionFor, which needs nothing of the shaper.)
   */
  async start(shaper: SharedCaps): Promise<void> {
    this.#shaper = shaper;
    this.link.sub.on('message', (_channel: string, message: string) => this.#sync.announced(message));
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
      held: (id) => this.#held.get(id),
      fallbackShare: () => this.config.fallbackShare ?? 1 / this.#members.live,
      now: () => Date.now(),
    });
  }

  /** One exchange with Redis: report demand and counts, set the shares from the fleet's demand. */
  async tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    try {
      const shaper = this.#shaper;
      if (!shaper) return;
      const pairs = this.#exchange.sample(shaper);
      const held = this.#held.snapshot();
      const k = this.keys;
      const keys = [k.members, k.info, k.version, k.demand(this.instance), ...held.counts.map(([c]) => k.admission(c))];
      const info = this.#members.info(this.deps.connections());
      const args = [this.instance, info, this.config.memberTimeout, k.demand(''), pairs.length / 2, ...pairs, ...held.counts.map(([, n]) => n)];
      const reply = (await this.link.eval(TICK, keys, args)) as TickReply | undefined;
      if (!reply || this.#stopped) return;
      const [, version, members, others, previous, previousAgeMs] = reply;
      this.#members.checkUnique(previous, previousAgeMs);
      this.rebalances++;
      this.#lastRebalance = Date.now();
      this.#members.read(members);
      this.#exchange.settle(shaper, others, this.#members.live);
      this.#held.reported(held);
      this.#sync.seen(Number(version));
    } finally {
      this.#ticking = false;
    }
  }

  #linkChanged(up: boolean): void {
    if (up) {
      this.#sync.queue();
      return;
    }
    // Redis is away: keep the last shares, or use fallbackShare for everything.
    if (this.config.fallbackShare !== null) this.#shaper?.setAllShares(this.config.fallbackShare);
  }

  /**
   * An admin change made here, for the whole fleet. `value` undefined removes the entry. Returns
   * false when Redis is away: the change is in force here and is pushed once Redis is back.
   */
  publish(hash: RuntimeHash, field: string, value: unknown): Promise<boolean> {
    return this.#sync.publish(hash, field, value);
  }

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
      members: this.#members.list,
      shares: this.#exchange.views,
    };
  }

  /** Members seen live at the last heartbeat (1 while alone or Redis is away from the start). */
  get liveMembers(): number {
    return this.#members.live;
  }

  get shares(): readonly ShareView[] {
    return this.#exchange.views;
  }

  /** Leaves the fleet: the others take over this instance's shares at their next tick. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#sync.stop();
    if (this.link.up) {
      const k = this.keys;
      await this.link.run((r) => {
        const m = r.multi().hdel(k.members, this.instance).hdel(k.info, this.instance).del(k.demand(this.instance));
        for (const customer of this.#held.customers()) m.hdel(k.admission(customer), this.instance);
        return m.exec();
      });
    }
    await this.link.close();
  }
}
