/**
 * The config of a running proxy, in one place: the base config (from the file, replaced by a
 * reload), the runtime changes overlaid on it (admin API, or another instance of the fleet), and
 * the effective config that results. Every change goes through one apply, which tells the
 * listeners (shaper, upstreams, listeners, admin server, ...) in the order they subscribed; the
 * runtime changes are then saved to the state file.
 */
import type { Logger } from '../log.js';
import { ProxyError } from '../errors.js';
import { cloneRuntime, effectiveShaping, emptyRuntime, errorText, loadRuntime, pruneRuntime, saveRuntime, type RuntimeState } from './runtime-state.js';
import { existingOf, legacyStateFileFor, stateFileFor } from './state-dir.js';
import type { ProxyConfig } from './types.js';

/** Why the effective config changed. */
export type ChangeKind = 'start' | 'reload' | 'runtime' | 'fleet';

export interface ConfigChange {
  kind: ChangeKind;
  /** The effective config now in force. */
  config: ProxyConfig;
  previous: ProxyConfig;
  /** For a reload: what the operator gave as the reason (SIGHUP, file changed, ...). */
  why?: string;
}

export type ChangeListener = (change: ConfigChange) => void;

/** What admin and cluster may read of the config store. */
export interface ConfigView {
  readonly config: ProxyConfig;
  readonly base: ProxyConfig;
  /** The runtime changes as stored (do not modify: hand a changed copy to applyRuntime). */
  readonly runtime: Readonly<RuntimeState>;
  /** Whether the tier / customer in force comes from a runtime change. */
  fromRuntime(kind: 'tier' | 'customer', name: string): boolean;
}

export class ConfigStore implements ConfigView {
  #base: ProxyConfig;
  #config: ProxyConfig;
  #state: RuntimeState = emptyRuntime();
  #file: string | null;
  #runtimeTiers = new Set<string>();
  #runtimeCustomers = new Set<string>();
  readonly #listeners: ChangeListener[] = [];
  readonly #reported = new Set<string>();
  #writes: Promise<void> = Promise.resolve();

  constructor(
    base: ProxyConfig,
    private readonly log: Logger,
  ) {
    this.#base = base;
    this.#config = base;
    this.#file = stateFileFor(base);
  }

  get config(): ProxyConfig {
    return this.#config;
  }

  get base(): ProxyConfig {
    return this.#base;
  }

  get runtime(): Readonly<RuntimeState> {
    return this.#state;
  }

  /** Where runtime changes are saved; null: in memory only (a config with no file). */
  get stateFile(): string | null {
    return this.#file;
  }

  fromRuntime(kind: 'tier' | 'customer', name: string): boolean {
    return (kind === 'tier' ? this.#runtimeTiers : this.#runtimeCustomers).has(name);
  }

  /** Listen to every change of the effective config; returns the unsubscribe. */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** Reads the state file (pruned against the base config) and puts the effective config in force. */
  async start(): Promise<void> {
    if (this.#file) {
      const chosenBy = this.#base.stateFile ? 'stateFile' : this.#base.stateDir?.from;
      this.log.info({ stateFile: this.#file, chosenBy }, 'runtime changes are kept in the state file');
      // Before the state directory the file sat beside the config: read there once, then saved here.
      const from = await existingOf(this.#file, legacyStateFileFor(this.#base));
      const { state, warnings } = await loadRuntime(from);
      for (const w of warnings) this.log.warn({ stateFile: from }, w);
      this.#state = state;
      const moved = from !== this.#file;
      if (moved) this.log.warn({ from, stateFile: this.#file }, 'runtime changes read from beside the config file; they are kept in the state directory from now on (the old file can go)');
      this.#prune(state.configTiers ?? [], this.#base, moved);
    }
    this.#apply('start', this.#state);
  }

  /** A new base config (already validated); runtime changes it no longer fits are dropped. */
  reload(next: ProxyConfig, why?: string): void {
    const old = this.#base;
    this.#base = next;
    const file = stateFileFor(next);
    const moved = file !== this.#file;
    this.#file = file;
    // A state file that moved gets the state at once, so a restart finds it there.
    this.#prune(Object.keys(old.tiers), next, moved);
    this.#apply('reload', this.#state, why);
  }

  /**
   * Makes `next` the runtime state (validated here again: an entry that does not fit is left out
   * and logged), applies it, and saves it. Rejects with SHAPER_ERR_STATE when the save fails: the
   * change is then in force but would be lost at a restart.
   */
  async applyRuntime(next: RuntimeState, kind: 'runtime' | 'fleet' = 'runtime'): Promise<void> {
    this.#apply(kind, next);
    try {
      await this.persist();
    } catch (err) {
      this.log.error({ error: errorText(err) }, 'runtime change applied but not saved');
      throw new ProxyError('SHAPER_ERR_STATE', `${errorText(err)}; the change is in force but will be lost at restart`, { cause: err });
    }
  }

  /** A copy of the runtime state to change and hand to applyRuntime. */
  draft(): RuntimeState {
    return cloneRuntime(this.#state);
  }

  /** Writes the state as it is when the write starts; resolves once it is on disk. */
  persist(): Promise<void> {
    const file = this.#file;
    if (!file) return Promise.resolve();
    const write = this.#writes.then(() => saveRuntime(file, this.#state));
    this.#writes = write.catch(() => {});
    return write;
  }

  /** Waits for the writes under way. */
  flush(): Promise<void> {
    return this.#writes;
  }

  #apply(kind: ChangeKind, state: RuntimeState, why?: string): void {
    const eff = effectiveShaping(this.#base, state);
    this.#state = state;
    this.#runtimeTiers = eff.runtimeTiers;
    this.#runtimeCustomers = eff.runtimeCustomers;
    for (const line of eff.dropped) {
      if (this.#reported.has(line)) continue;
      this.#reported.add(line);
      this.log.warn({ stateFile: this.#file, problem: line }, 'runtime change not applied');
    }
    const previous = this.#config;
    this.#config = eff.config;
    const change: ConfigChange = { kind, config: eff.config, previous, ...(why !== undefined ? { why } : {}) };
    for (const listener of [...this.#listeners]) listener(change);
  }

  #prune(oldTierNames: readonly string[], base: ProxyConfig, save = false): void {
    const before = JSON.stringify(this.#state.configTiers ?? null);
    const { state, pruned } = pruneRuntime(this.#state, oldTierNames, base);
    this.#state = state;
    if (pruned.length > 0) this.log.info({ stateFile: this.#file, pruned }, 'runtime changes dropped after a config change');
    if (!this.#file || (!save && pruned.length === 0 && JSON.stringify(state.configTiers) === before)) return;
    this.persist().catch((err: unknown) => this.log.error({ error: errorText(err) }, 'could not save the runtime state'));
  }
}
