import { readFile, rename } from 'node:fs/promises';
import { subscribe, type CloseEvent, type RefusedEvent, type TargetFailedEvent, type TimedEvent } from '../channels.js';
import type { Clock } from '../clock.js';
import { existingOf, legacyStateFileFor } from '../config/state-dir.js';
import type { ProxyConfig } from '../config/types.js';
import { isProxyError } from '../errors.js';
import type { Housekeeping, Chore } from '../housekeeping.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { Analyzer } from '../server/connection.js';
import { FooAnalyzer } from './foo.js';
import { Stats, type SavedCounters } from './stats.js';
import { Tracing } from './tracing/tracing.js';

const SAMPLE_MS = 1000;

/** Where the counters are kept: beside the runtime state file (`x.state.json` -> `x.stats.json`, in the state directory). */
export function statsFileFor(stateFile: string | null): string | null {
  if (!stateFile) return null;
  return stateFile.replace(/(\.state)?\.json$/, '') + '.stats.json';
}

/** What the observer reads of the proxy. */
export interface ObserverParts {
  /** the proxy's token on its lifecycle events */
  owner: object;
  clock: Clock;
  log: Logger;
  housekeeping: Housekeeping;
  /** the effective config (observe flags, apps and tiers) */
  config(): ProxyConfig;
  /** the runtime state file; the counters sit beside it */
  stateFile(): string | null;
  /** each tier's bytes so far each way (the scheduler nodes' totals) */
  tierBytes(): Map<string, { down: number; up: number }>;
  /** bytes the open connections have moved so far */
  openBytes(): { up: number; down: number };
}

/**
 * Listens to the lifecycle channels (src/channels.ts) and feeds Stats from them: counters, the
 * latency histograms, refusals, and the one summary line per closed connection. Once a second (a
 * housekeeping chore) it samples per-tier rates and saves the counters (atomic write), so a
 * restart loses at most one interval. A missing or corrupt counters file means starting from
 * zero, with a warning; it never stops the proxy.
 */
export class Observer {
  readonly stats: Stats;
  /** OpenTelemetry spans of connections (config `tracing`) */
  readonly tracing: Tracing;
  #chore: Chore | undefined;
  #unsubscribe: (() => void) | undefined;
  #last = 0;
  #file: string | null = null;
  readonly #parts: ObserverParts;

  constructor(parts: ObserverParts) {
    this.#parts = parts;
    this.stats = new Stats(parts.clock);
    this.tracing = new Tracing(parts.owner, parts.log);
  }

  async start(): Promise<void> {
    this.#file = statsFileFor(this.#parts.stateFile());
    // Before the state directory the counters sat beside the config: read there once, then saved here.
    if (this.#file) await this.#restore(await existingOf(this.#file, statsFileFor(legacyStateFileFor(this.#parts.config()))));
    this.#last = this.#parts.clock.now();
    this.#chore = this.#parts.housekeeping.add('stats sample and save', SAMPLE_MS, (now) => this.tick(now));
    this.#unsubscribe = subscribe(this.#parts.owner, {
      open: () => this.stats.opened(),
      connected: (e) => this.#record('connect', e),
      firstByte: (e) => this.#record('ttfb', e),
      close: (e) => this.#closed(e),
      refused: (e) => this.#refused(e),
      targetFailed: (e) => this.#targetFailed(e),
      quota: ({ owner: _owner, ...e }) => this.#parts.log.info(e, e.state === 'exceeded' ? 'customer over its quota' : 'customer back in its tier: a new period'),
      window: ({ owner: _owner, ...e }) => this.#parts.log.info(e, e.window < 0 ? 'schedule window ended' : 'schedule window began'),
    });
    await this.tracing.configure(this.#parts.config().tracing);
  }

  async #restore(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#parts.log.warn({ file, error: (err as Error).message }, 'cannot read the saved counters; starting from zero');
      }
      return;
    }
    try {
      const saved = JSON.parse(text) as Partial<SavedCounters>;
      if (!saved || typeof saved !== 'object' || saved.version !== 1) throw new Error('not a counters file (version 1)');
      this.stats.restore(saved);
      this.#parts.log.info({ file, savedAt: saved.savedAt, connectionsTotal: saved.connectionsTotal }, 'counters restored');
    } catch (err) {
      this.#parts.log.warn({ file, error: (err as Error).message }, 'saved counters are corrupt; starting from zero (kept as .corrupt)');
      await rename(file, `${file}.corrupt`).catch(() => {});
    }
  }

  /** Once a second: tier rates and the counters file. */
  tick(now = this.#parts.clock.now()): void {
    this.stats.sampleTiers(Date.now(), this.#parts.tierBytes(), now - this.#last);
    this.#last = now;
    void this.save();
  }

  #inFlight: Promise<void> | null = null;
  /** The last save failed: its warning is logged once per failing spell, not once a second. */
  #saveFailing = false;
  #again = false;

  /**
   * Save the counters. A save asked for while one is being written runs right
   * after it (never dropped), and the returned promise covers that one too.
   */
  save(): Promise<void> {
    if (!this.#file) return Promise.resolve();
    if (this.#inFlight) {
      this.#again = true;
      return this.#inFlight;
    }
    this.#inFlight = (async () => {
      do {
        this.#again = false;
        const file = this.#file;
        if (!file) break;
        try {
          await writeFileAtomic(file, `${JSON.stringify(this.stats.counters(this.#parts.openBytes()))}\n`);
          if (this.#saveFailing) this.#parts.log.info({ file }, 'counters saved again');
          this.#saveFailing = false;
        } catch (err) {
          // Once per failing spell, not once a second (out of descriptors, a full disk).
          if (!this.#saveFailing) this.#parts.log.warn({ file, error: (err as Error).message }, 'cannot save the counters (not logged again until a save succeeds)');
          this.#saveFailing = true;
        }
      } while (this.#again);
      this.#inFlight = null;
    })();
    return this.#inFlight;
  }

  async stop(): Promise<void> {
    this.#chore?.cancel();
    this.#chore = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await this.save();
    await this.tracing.stop();
    this.stats.destroy();
  }

  /** The config changed: forget apps and tiers that left it; the counters follow the state file. */
  reconfigured(config: ProxyConfig): void {
    this.stats.prune(new Set(config.apps.map((a) => a.name)), new Set(Object.keys(config.tiers)));
    if (!this.#released) this.#file = statsFileFor(this.#parts.stateFile());
    void this.tracing.configure(config.tracing);
  }

  #released = false;

  /**
   * Another process owns the counters file from now on (it took over at an upgrade, after reading
   * the file this one saved): no more saves, so a draining process cannot overwrite its counts.
   */
  release(): void {
    this.#released = true;
    this.#file = null;
  }

  /** The Foo analyser of a connection whose app speaks Foo (the connection asks, once it is set up). */
  analyzer(conn: { readonly app: { readonly config: { readonly protocol: string } }; readonly appName: string; readonly tier: string | undefined }): Analyzer | null {
    if (conn.app.config.protocol !== 'foo') return null;
    const app = conn.appName;
    const tier = conn.tier;
    return new FooAnalyzer(this.stats.foo, this.#parts.clock, (ms) => this.stats.record('foo', app, tier, ms));
  }

  // ---- the lifecycle events (per connection, never per chunk) ----

  #record(kind: 'connect' | 'ttfb', e: TimedEvent): void {
    if (this.#parts.config().observe.latency) this.stats.record(kind, e.conn.appName, e.conn.tier, e.ms);
  }

  #closed({ conn, summary }: CloseEvent): void {
    this.stats.closed(summary, conn.shaperWaitMs, this.#parts.config().observe.latency);
    if (summary.reason === 'no_target' || summary.reason === 'wake_timeout') this.#parts.log.warn(summary, 'connection closed');
    else this.#parts.log.info(summary, 'connection closed');
  }

  #refused(e: RefusedEvent): void {
    this.stats.refuse(e.reason);
  }

  #targetFailed(e: TargetFailedEvent): void {
    this.stats.targetFailed(e.app, e.target);
    if (!isProxyError(e.error, 'SHAPER_ERR_TARGET_TLS')) return;
    this.stats.targetTlsFailed();
    // Once per failed dial (the target is then down): OpenSSL's reason is what the operator needs.
    this.#parts.log.warn({ target: e.target, error: e.error.message }, 'TLS with the target failed; trying the next');
  }
}
