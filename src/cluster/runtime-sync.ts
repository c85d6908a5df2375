/**
 * Admin changes across the fleet: a change made here is written to a Redis hash by the CHANGE
 * script, which bumps the version and announces it on the control channel; the others read the
 * hashes and adopt them (on the announcement, or when the heartbeat sees a newer version after a
 * missed message). While Redis is away a change applies here and waits in `pending`.
 */
import type { RuntimeState } from '../config/runtime-state.js';
import type { Logger } from '../log.js';
import type { FleetKeys, RuntimeHash } from './keys.js';
import type { RedisLink } from './link.js';
import { CHANGE } from './scripts.js';

/** The tiers and customers of the runtime changes, as the fleet shares them. */
export type SharedRuntime = Pick<RuntimeState, 'tiers' | 'customers'>;

export interface RuntimeSyncDeps {
  link: RedisLink;
  keys: FleetKeys;
  instance: string;
  log: Logger;
  /** The runtime changes (admin API) in force here. */
  runtime(): SharedRuntime;
  /** Another instance changed tiers or customers: make `state` the runtime state here. */
  adopt(state: SharedRuntime): void;
}

export class RuntimeSync {
  /** version of the runtime changes last adopted or written here; -1: not synced yet */
  #version = -1;
  #sync: Promise<void> = Promise.resolve();
  #syncQueued = false;
  #stopped = false;
  /** admin changes made while Redis was away, pushed when it is back */
  readonly #pending = new Map<string, { hash: RuntimeHash; field: string; value: unknown }>();

  constructor(private readonly deps: RuntimeSyncDeps) {}

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

  /** A message on the control channel ("version instance"). */
  announced(message: string): void {
    const [version, from] = message.split(' ');
    if (from !== this.deps.instance && Number(version) !== this.#version) this.queue();
  }

  /** The version of the fleet's runtime changes, as the heartbeat read it. */
  seen(version: number): void {
    if (version !== this.#version) this.queue();
  }

  /** One sync at a time; a sync asked for while one runs runs once more after it. */
  queue(): void {
    if (this.#syncQueued || this.#stopped) return;
    this.#syncQueued = true;
    this.#sync = this.#sync.then(async () => {
      this.#syncQueued = false;
      await this.#syncRuntime().catch((err: unknown) => this.deps.log.warn({ error: String(err) }, 'cluster: could not read the fleet\'s runtime changes'));
    });
  }

  /** No sync is started any more; resolves once the one running is done. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#sync;
  }

  async #write(hash: RuntimeHash, field: string, value: unknown): Promise<number | undefined> {
    const { link, keys } = this.deps;
    const reply = await link.eval(CHANGE, [keys.runtime[hash], keys.version], [field, value === undefined ? '' : JSON.stringify(value), keys.channel, this.deps.instance]);
    if (reply === undefined) return undefined;
    const version = Number(reply);
    // Only when no other change slipped in between; otherwise the next sync reads them all.
    if (version === this.#version + 1) this.#version = version;
    return version;
  }

  /** Pushes changes made while Redis was away (seeding an empty Redis first), then adopts the fleet's state. */
  async #syncRuntime(): Promise<void> {
    const { link, keys: k } = this.deps;
    const version = await link.run((r) => r.get(k.version));
    if (version === undefined) return;
    if (version === null) await this.#seed();
    for (const [key, change] of this.#pending) {
      if ((await this.#write(change.hash, change.field, change.value)) === undefined) return;
      this.#pending.delete(key);
    }
    const read = await link.run((r) => r.multi().get(k.version).hgetall(k.runtime.tiers).hgetall(k.runtime.customers).exec());
    if (!read) return;
    const [[, v], [, tiers], [, customers]] = read as [[unknown, string | null], [unknown, Record<string, string>], [unknown, Record<string, string>]];
    const state = { tiers: parseEntries(tiers) as Record<string, unknown>, customers: parseEntries(customers) as RuntimeState['customers'] };
    const here = this.deps.runtime();
    if (!sameEntries(state.tiers, here.tiers) || !sameEntries(state.customers, here.customers)) {
      this.deps.adopt(state);
      this.deps.log.info({ version: Number(v ?? 0) }, 'cluster: tiers and customers updated from the fleet');
    }
    this.#version = Number(v ?? 0);
  }

  /** An empty Redis (first start, or it lost its data): this instance's runtime state becomes the fleet's. */
  async #seed(): Promise<void> {
    const state = this.deps.runtime();
    const k = this.deps.keys;
    await this.deps.link.run(async (r) => {
      const m = r.multi();
      for (const [name, tier] of Object.entries(state.tiers)) m.hsetnx(k.runtime.tiers, name, JSON.stringify(tier));
      for (const [id, customer] of Object.entries(state.customers)) m.hsetnx(k.runtime.customers, id, JSON.stringify(customer));
      m.setnx(k.version, 1);
      return m.exec();
    });
  }
}

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

/** The same entries, whatever their order. */
function sameEntries(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function sorted(map: Record<string, unknown>): [string, unknown][] {
  return Object.entries(map).sort(([a], [b]) => a.localeCompare(b));
}
