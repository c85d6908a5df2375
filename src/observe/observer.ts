import { readFile, rename } from 'node:fs/promises';
import type { Proxy } from '../index.js';
import type { Analyzer, Connection, ConnectionSummary } from '../server/connection.js';
import { stateFileFor } from '../admin/runtime.js';
import { writeFileAtomic } from '../atomic-file.js';
import { FooAnalyzer } from './foo.js';
import { Stats, type SavedCounters } from './stats.js';
import { openBytes } from './view.js';

const SAMPLE_MS = 1000;

/** Where the counters are kept: beside the runtime state file (`x.state.json` -> `x.stats.json`). */
export function statsFileFor(proxy: Proxy): string | null {
  const state = stateFileFor(proxy.baseConfig);
  if (!state) return null;
  return state.replace(/(\.state)?\.json$/, '') + '.stats.json';
}

/**
 * Feeds Stats from connection events, samples per-tier rates once a second
 * (one timer), and saves the counters about every second (atomic write) so a
 * restart loses at most one interval. A missing or corrupt counters file means
 * starting from zero, with a warning; it never stops the proxy.
 */
export class Observer {
  readonly stats: Stats;
  #timer: NodeJS.Timeout | undefined;
  #last = 0;
  #file: string | null = null;

  constructor(private readonly proxy: Proxy) {
    this.stats = new Stats(proxy.clock);
  }

  async start(): Promise<void> {
    this.#file = statsFileFor(this.proxy);
    if (this.#file) await this.#restore(this.#file);
    this.#last = Date.now();
    this.#timer = setInterval(() => this.tick(), SAMPLE_MS);
    this.#timer.unref();
  }

  async #restore(file: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.proxy.log.warn({ file, error: (err as Error).message }, 'cannot read the saved counters; starting from zero');
      }
      return;
    }
    try {
      const saved = JSON.parse(text) as Partial<SavedCounters>;
      if (!saved || typeof saved !== 'object' || saved.version !== 1) throw new Error('not a counters file (version 1)');
      this.stats.restore(saved);
      this.proxy.log.info({ file, savedAt: saved.savedAt, connectionsTotal: saved.connectionsTotal }, 'counters restored');
    } catch (err) {
      this.proxy.log.warn({ file, error: (err as Error).message }, 'saved counters are corrupt; starting from zero (kept as .corrupt)');
      await rename(file, `${file}.corrupt`).catch(() => {});
    }
  }

  /** Once a second: tier rates and the counters file. */
  tick(): void {
    const now = Date.now();
    const bytes = new Map<string, { down: number; up: number }>();
    for (const [name, t] of this.proxy.shaper.tiers) bytes.set(name, { down: t.nodes.down.bytes, up: t.nodes.up.bytes });
    this.stats.sampleTiers(now, bytes, now - this.#last);
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
          await writeFileAtomic(file, `${JSON.stringify(this.stats.counters(openBytes(this.proxy)))}\n`);
          if (this.#saveFailing) this.proxy.log.info({ file }, 'counters saved again');
          this.#saveFailing = false;
        } catch (err) {
          // Once per failing spell, not once a second (out of descriptors, a full disk).
          if (!this.#saveFailing) this.proxy.log.warn({ file, error: (err as Error).message }, 'cannot save the counters (not logged again until a save succeeds)');
          this.#saveFailing = true;
        }
      } while (this.#again);
      this.#inFlight = null;
    })();
    return this.#inFlight;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.save();
    this.stats.destroy();
  }

  /** The config changed: forget apps and tiers that left it. */
  reconfigured(): void {
    this.stats.prune(new Set(this.proxy.config.apps.map((a) => a.name)), new Set(Object.keys(this.proxy.config.tiers)));
    this.#file = statsFileFor(this.proxy);
  }

  // ---- hooks for connections (per connection or per message, never per chunk) ----

  opened(): void {
    this.stats.opened();
  }

  connected(conn: Connection, ms: number): void {
    this.stats.record('connect', conn.appName, conn.shaped?.customer.tier, ms);
  }

  firstByte(conn: Connection, ms: number): void {
    this.stats.record('ttfb', conn.appName, conn.shaped?.customer.tier, ms);
  }

  closed(conn: Connection, summary: ConnectionSummary): void {
    this.stats.closed(summary, conn.shaperWaitMs, this.proxy.config.observe.latency);
  }

  analyzer(conn: Connection): Analyzer | null {
    if (conn.app.config.protocol !== 'foo') return null;
    const app = conn.appName;
    const tier = conn.shaped?.customer.tier;
    return new FooAnalyzer(this.stats.foo, this.proxy.clock, (ms) => this.stats.record('foo', app, tier, ms));
  }
}
