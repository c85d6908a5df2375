/**
 * What makes a tier a plan beyond its caps (issue 15): usage accounting per customer and period
 * (usage.ts), quotas, and schedule windows (schedules.ts). Every change reaches live connections
 * through the tree, without reconnecting:
 *
 * - a quota is watched on the customer's scheduler nodes (SchedNode.watchAt), so the switch comes
 *   within a serve pass of the quota's byte, not at the next look; past it the customer is held in
 *   the quota's `then` tier, or, without one, its connections are closed and new ones refused;
 * - windows and periods change at their boundaries: one housekeeping chore, timed for the next
 *   boundary (or the next flush of the usage to its store, every FLUSH_MS).
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { publish } from '../../channels.js';
import type { Clock } from '../../clock.js';
import { isoInZone, periodAt, type Span } from '../../config/calendar.js';
import type { AccountingConfig, QuotaConfig, ShapingConfig } from '../../config/types.js';
import { ProxyError } from '../../errors.js';
import type { Chore, Housekeeping } from '../../housekeeping.js';
import type { Logger } from '../../log.js';
import type { CustomerState, ShapingTree } from '../tree.js';
import type { Refusal } from '../admit.js';
import { Schedules } from './schedules.js';
import { EVICT_MS, Usage, UsageBook } from './usage.js';
import { UsageStore, type ClosedPeriod } from './usage-store.js';
import { summaryOf, usageOf, usagePage, type PlansSummary, type UsagePage, type UsageView, type ViewSource } from './views.js';

export type { PlansSummary, UsagePage, UsageView } from './views.js';

/** How often usage is written to its store (a crash loses at most this much counting). */
export const FLUSH_MS = 5000;

export type { Refusal } from '../admit.js';

export interface PlansOptions {
  /** wall-clock epoch ms (periods and windows are calendar time); default Date.now */
  wall?: (() => number) | undefined;
  /** the runtime state file: the usage store and log go beside it; null: memory only */
  stateFile?: () => string | null;
  /** where a failed write of the usage is warned about */
  log?: Pick<Logger, 'warn'>;
  /** the token on the plans' lifecycle events (src/channels.ts: quota, window) */
  owner?: object;
}

/** Used bytes that count for `quota`. */
export function usedOf(u: Usage, direction: QuotaConfig['direction']): number {
  const up = UsageBook.upNow(u);
  const down = UsageBook.downNow(u);
  return direction === 'down' ? down : direction === 'up' ? up : up + down;
}

/** Where a state file's usage goes: `x.state.json` -> `x.usage/` and `x.usage.log`. */
export function usagePaths(stateFile: string): { dir: string; log: string } {
  const base = stateFile.replace(/(\.state)?\.json$/, '');
  return { dir: `${base}.usage`, log: `${base}.usage.log` };
}

export class Plans {
  readonly #tree: ShapingTree;
  readonly #clock: Clock;
  readonly #wall: () => number;
  readonly #stateFile: () => string | null;
  readonly #warn: (message: string, err?: unknown) => void;
  readonly #owner: object;
  readonly schedules = new Schedules();
  /** the shaping config as given (tiers without their windows) */
  #config: ShapingConfig | undefined;
  #accounting: AccountingConfig | undefined;
  #book: UsageBook | null = null;
  #bookKey = '';
  #logFile: string | null = null;
  #appends: Promise<void> = Promise.resolve();
  #chore: Chore | null = null;
  #lastFlush = 0;
  #busy: Promise<void> | null = null;
  #rolling = false;

  constructor(tree: ShapingTree, clock: Clock, options: PlansOptions = {}) {
    this.#tree = tree;
    this.#clock = clock;
    this.#wall = options.wall ?? Date.now;
    this.#stateFile = options.stateFile ?? (() => null);
    const log = options.log;
    this.#warn = log ? (message, err) => log.warn(err === undefined ? {} : { error: String(err) }, message) : () => {};
    this.#owner = options.owner ?? this;
  }

  get accounting(): AccountingConfig | undefined {
    return this.#accounting;
  }

  get zone(): string {
    return this.#accounting?.timezone ?? 'UTC';
  }

  /** The usage records (null: accounting is off). */
  get book(): UsageBook | null {
    return this.#book;
  }

  /** The config as given, tiers without their windows. */
  get config(): ShapingConfig | undefined {
    return this.#config;
  }

  /** Apply a shaping config: the tree gets the tiers as their windows in force make them; quotas are looked at again. */
  apply(config: ShapingConfig): void {
    this.#config = config;
    const wall = this.#wall();
    this.#configureAccounting(config.accounting, wall);
    this.#tree.apply(this.schedules.effective(config, wall, this.zone));
    this.#evaluateAll();
    this.#retime();
  }

  /**
   * A connection of `cust` is being admitted: its usage is read (from the store, the first time
   * in a while), and a customer over a quota with no `then` is refused.
   */
  admitting(cust: CustomerState): Refusal | null | Promise<Refusal | null> {
    const book = this.#book;
    if (!book) return null;
    const u = book.load(cust.id, cust.home);
    return u instanceof Promise ? u.then((loaded) => this.#admitted(cust, loaded)) : this.#admitted(cust, u);
  }

  #admitted(cust: CustomerState, u: Usage): Refusal | null {
    if (this.#tree.customers.get(cust.id) !== cust) return null;
    this.#book!.bind(u, cust.nodes);
    u.activeAt = this.#clock.now();
    this.#evaluate(cust, u);
    return u.exceeded && cust.held === null ? 'quota_exceeded' : null;
  }

  /** A customer's nodes are going: its record takes what they counted. */
  leaving(cust: CustomerState): void {
    disarm(cust);
    const u = this.#book?.records.get(cust.id);
    if (u && u.nodes === cust.nodes) this.#book!.bind(u, null);
  }

  /** Runs the chore on `housekeeping`; closes the stored periods that ended while the proxy was down. */
  start(housekeeping: Housekeeping): void {
    this.#chore = housekeeping.add('plans: schedules, periods, usage', FLUSH_MS, (now) => this.#tick(now));
    this.#lastFlush = this.#clock.now();
    this.#run(() => this.#book?.closeStored() ?? Promise.resolve());
    this.#retime();
  }

  /** Writes what is counted (at shutdown). */
  async stop(): Promise<void> {
    this.#chore?.cancel();
    this.#chore = null;
    await this.#busy;
    await this.#book?.flush(() => false);
    await this.#appends;
  }

  /** Waits for the chore's work under way (a roll or a flush); for tests. */
  settled(): Promise<void> {
    return this.#busy ?? Promise.resolve();
  }

  // ---- views -------------------------------------------------------------------------------------

  /** A customer's usage (undefined: accounting is off, or nothing counted this period or the last). */
  usage(id: string): Promise<UsageView | undefined> {
    const src = this.#viewSource();
    return src ? usageOf(src, id) : Promise.resolve(undefined);
  }

  /** A page of every customer's usage (null: accounting is off). */
  usagePage(after: string | undefined, limit: number): Promise<UsagePage> | null {
    const src = this.#viewSource();
    return src ? usagePage(src, after, limit) : null;
  }

  /** For /stats and the dashboard: the period, the `limit` customers in memory with the most bytes, the windows in force. */
  summary(limit = 10): PlansSummary {
    return summaryOf(this.#viewSource(), this.#config, this.schedules.active, this.zone, limit);
  }

  #viewSource(): ViewSource | null {
    const book = this.#book;
    if (!book) return null;
    const store = book.store;
    return {
      config: this.#config,
      zone: this.zone,
      period: book.period,
      records: book.records,
      customers: this.#tree.customers,
      shard: (n) => (store ? store.shard(n) : Promise.resolve([])),
      get: (id) => (store ? store.get(id) : Promise.resolve(undefined)),
    };
  }

  // ---- the chore -----------------------------------------------------------------------------

  #tick(now: number): void {
    const config = this.#config;
    if (!config) return;
    const wall = this.#wall();
    if (wall >= this.schedules.next) {
      for (const tier of this.schedules.changed(config, wall, this.zone)) {
        this.#tree.setTier(tier);
        publish('window', { owner: this.#owner, tier: tier.name, window: this.schedules.active.get(tier.name) ?? -1 });
      }
    }
    const book = this.#book;
    if (book && wall >= book.period.end) {
      if (!this.#rolling) this.#roll(book, periodAt(wall, this.#accounting!.period, this.zone));
    } else if (book && now - this.#lastFlush >= FLUSH_MS) {
      this.#lastFlush = now;
      this.#adoptUnbound();
      this.#run(() => book.flush((u) => this.#idle(u, now)));
    }
    this.#retime();
  }

  /** The period ended (or its definition changed): close it, start `next`, and look at the quotas again. */
  #roll(book: UsageBook, next: Span): void {
    this.#rolling = true;
    this.#run(async () => {
      try {
        await book.roll(next);
      } finally {
        this.#rolling = false;
        this.#evaluateAll();
        this.#retime();
      }
    });
  }

  /** One roll or flush at a time; a failure is a warning (the counts stay in memory and are written next time). */
  #run(work: () => Promise<void>): void {
    const run = (this.#busy ?? Promise.resolve()).then(work).catch((err: unknown) => this.#warn('usage accounting: could not write the usage', err));
    const busy = run.finally(() => {
      if (this.#busy === busy) this.#busy = null;
    });
    this.#busy = busy;
  }

  /** Times the chore for the next window boundary, period end or flush, whichever comes first. */
  #retime(): void {
    if (!this.#chore) return;
    const wall = this.#wall();
    // A flush is due FLUSH_MS after the last one when there is a book (a roll retimes when it ends).
    const flushing = this.#book !== null && !this.#rolling;
    let ms = flushing ? FLUSH_MS - (this.#clock.now() - this.#lastFlush) : Infinity;
    if (this.schedules.next - wall < ms) ms = this.schedules.next - wall;
    if (flushing && this.#book!.period.end - wall < ms) ms = this.#book!.period.end - wall;
    // Nothing to wait for (no accounting, no schedule window): the chore rests until a config brings one.
    this.#chore.every(ms === Infinity ? 0 : Math.max(1, Math.ceil(ms)));
  }

  /** A record may leave memory once its customer has had no connection for EVICT_MS. */
  #idle(u: Usage, now: number): boolean {
    const cust = this.#tree.customers.get(u.id);
    if (cust && cust.connections.size > 0) {
      u.activeAt = now;
      return false;
    }
    if (now - u.activeAt < EVICT_MS) return false;
    if (cust) disarm(cust);
    return true;
  }

  /** Customers whose bytes no record counts yet (connections moved to them by a config change). */
  #adoptUnbound(): void {
    const book = this.#book!;
    for (const cust of this.#tree.customers.values()) {
      if (cust.connections.size === 0) continue;
      const u = book.records.get(cust.id);
      if (u && u.nodes === cust.nodes) continue;
      const loaded = book.load(cust.id, cust.home);
      book.bind(loaded instanceof Promise ? book.records.get(cust.id)! : loaded, cust.nodes);
      if (loaded instanceof Promise) void loaded.then((l) => this.#evaluate(cust, l), () => {});
    }
  }

  // ---- quotas ----------------------------------------------------------------------------------

  #evaluateAll(): void {
    const records = this.#book?.records;
    for (const cust of this.#tree.customers.values()) this.#evaluate(cust, records?.get(cust.id));
  }

  /** Holds, releases, closes or watches `cust` by its usage against its own tier's quota. */
  #evaluate(cust: CustomerState, u: Usage | undefined): void {
    const tree = this.#tree;
    if (tree.customers.get(cust.id) !== cust) return;
    const quota = this.#config?.tiers[cust.home]?.quota;
    if (!quota || !u) {
      disarm(cust);
      if (u) u.exceeded = false;
      tree.hold(cust, null);
      return;
    }
    if (!u.loaded) return; // looked at again once read
    const used = usedOf(u, quota.direction);
    if (used < quota.bytes) {
      if (u.exceeded) publish('quota', { owner: this.#owner, customer: cust.id, tier: cust.home, then: quota.then, state: 'released', used, bytes: quota.bytes });
      u.exceeded = false;
      tree.hold(cust, null);
      this.#watch(cust, quota, quota.bytes - used);
      return;
    }
    disarm(cust);
    if (!u.exceeded) publish('quota', { owner: this.#owner, customer: cust.id, tier: cust.home, then: quota.then, state: 'exceeded', used, bytes: quota.bytes });
    u.exceeded = true;
    const then = quota.then !== null && tree.tiers.has(quota.then) ? quota.then : null;
    tree.hold(cust, then);
    if (then !== null) return;
    const why = new ProxyError('SHAPER_ERR_QUOTA', `customer ${cust.id} is over the quota of tier ${cust.home} (${quota.bytes} bytes ${quota.direction}) until the period ends`);
    for (const sc of [...cust.connections]) sc.owner?.close('quota_exceeded', why);
  }

  /**
   * Wakes #evaluate when the quota may be reached: at the remaining bytes in one direction, or,
   * counting both, at half of them in either (so the sum cannot pass unseen; each wake halves the
   * rest until the quota is reached).
   */
  #watch(cust: CustomerState, quota: QuotaConfig, remaining: number): void {
    const { up, down } = cust.nodes;
    const step = quota.direction === 'both' ? Math.max(1, Math.ceil(remaining / 2)) : remaining;
    up.watchAt = quota.direction === 'down' ? Infinity : up.bytes + step;
    down.watchAt = quota.direction === 'up' ? Infinity : down.bytes + step;
    const onWatch = this.#onWatchOf(cust);
    up.onWatch = onWatch;
    down.onWatch = onWatch;
  }

  #onWatchOf(cust: CustomerState): () => void {
    return () => {
      const u = this.#book?.records.get(cust.id);
      if (u && u.nodes === cust.nodes) this.#evaluate(cust, u);
    };
  }

  // ---- accounting: the book, its store and its log ------------------------------------------------

  #configureAccounting(accounting: AccountingConfig | undefined, wall: number): void {
    const before = this.#accounting;
    this.#accounting = accounting;
    if (!accounting) {
      const book = this.#book;
      if (book) this.#run(() => book.flush(() => false));
      this.#book = null;
      this.#bookKey = '';
      return;
    }
    const stateFile = this.#stateFile();
    const paths = stateFile ? usagePaths(stateFile) : null;
    const key = paths?.dir ?? '';
    this.#logFile = accounting.log ?? paths?.log ?? null;
    const period = periodAt(wall, accounting.period, accounting.timezone);
    if (this.#book && key !== this.#bookKey) {
      this.#bookKey = key;
      this.#book.moveTo(paths ? new UsageStore(paths.dir, (m) => this.#warn(m)) : null);
    }
    if (this.#book) {
      // A new period or time zone: the period in force ends now, and the new one is counted from here.
      if (before && (before.period !== accounting.period || before.timezone !== accounting.timezone) && period.start !== this.#book.period.start) {
        this.#roll(this.#book, period);
      }
      return;
    }
    this.#bookKey = key;
    const store = paths ? new UsageStore(paths.dir, (m) => this.#warn(m)) : null;
    this.#book = new UsageBook(period, {
      store,
      append: (text) => this.#append(text),
      line: (id, closed) => this.#line(id, closed),
    });
  }

  #line(id: string, c: ClosedPeriod): string {
    const zone = this.zone;
    return `${JSON.stringify({ customer: id, tier: c.tier, start: isoInZone(c.start, zone), end: isoInZone(c.end, zone), timezone: zone, up: c.up, down: c.down })}\n`;
  }

  /** Appends to the usage log, in order; nowhere when there is none. */
  #append(text: string): Promise<void> {
    const file = this.#logFile;
    if (!file) return Promise.resolve();
    const write = this.#appends.then(async () => {
      await mkdir(dirname(file), { recursive: true });
      await appendFile(file, text);
    });
    this.#appends = write.catch(() => {});
    return write;
  }
}

function disarm(cust: CustomerState): void {
  cust.nodes.up.watchAt = Infinity;
  cust.nodes.down.watchAt = Infinity;
}
